using OServe.Contracts;
using OServe.Models.Parallelism;
using Xunit;

namespace OServe.Models.Tests.Parallelism;

public sealed class DevicePoolTests
{
    private static ReplicaSpec Spec(int tp, int pp, params string[] devices) =>
        new() { Id = "r1", GpuType = "H100", Devices = devices, Tp = tp, Pp = pp };

    [Fact]
    public void WithoutCudaThePoolIsLogicalCpuDevicesNamedAsInPlans()
    {
        var pool = DevicePool.Create(logicalDevices: 3);
        if (TorchSharp.torch.cuda.is_available())
        {
            Assert.True(pool.IsCuda);
            Assert.Equal(TorchSharp.torch.cuda.device_count(), pool.Devices.Count);
            return;
        }
        Assert.False(pool.IsCuda);
        Assert.Equal(["node0/0", "node0/1", "node0/2"], pool.Devices.Select(d => d.Id));
        Assert.All(pool.Devices, d => Assert.True(d.IsLogical && d.Torch.type == TorchSharp.DeviceType.CPU));
        Assert.Equal("node0", pool["node0/2"].Node);
    }

    [Fact]
    public void ResolvesAReplicaStageMajor()
    {
        var pool = DevicePool.Logical(4);
        var devices = pool.Resolve(Spec(2, 2, "node0/3", "node0/2", "node0/1", "node0/0"));
        Assert.Equal([3, 2, 1, 0], devices.Select(d => d.Index));
    }

    [Fact]
    public void BadReplicaDevicesAreNamedInTheError()
    {
        var pool = DevicePool.Logical(2);
        Assert.Contains("replica 'r1': devices[1] = 'node1/0' is not in the device pool (it has node0/0, node0/1)",
            Assert.Throws<ArgumentException>(() => pool.Resolve(Spec(2, 1, "node0/0", "node1/0"))).Message);
        Assert.Contains("replica 'r1': tp=2 x pp=1 needs 2 devices, the plan lists 1",
            Assert.Throws<ArgumentException>(() => pool.Resolve(Spec(2, 1, "node0/0"))).Message);
        Assert.Contains("replica 'r1': device 'node0/1' is listed twice (devices[1])",
            Assert.Throws<ArgumentException>(() => pool.Resolve(Spec(2, 1, "node0/1", "node0/1"))).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => DevicePool.Logical(0));
    }

    [Fact]
    public void ALogicalPoolCanMirrorAMultiNodeCluster()
    {
        var gpu = new GpuType { Name = "H100", MemoryGib = 80, Tflops = 989, HbmGbps = 3350 };
        var cluster = new Cluster
        {
            Name = "two-nodes", GpuTypes = [gpu], InterNodeLinkGbps = 50,
            Nodes = [new Node { Name = "a", GpuType = "H100", Gpus = 2, IntraLinkGbps = 450 }, new Node { Name = "b", GpuType = "H100", Gpus = 1, IntraLinkGbps = 450 }],
        };
        var pool = DevicePool.Logical(cluster);
        Assert.Equal(["a/0", "a/1", "b/0"], pool.Devices.Select(d => d.Id));
        Assert.Equal("b", pool["b/0"].Node);
    }
}
