using OServe.Models.Llama;
using OServe.Models.Loading;
using OServe.Models.Parallelism;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Parallelism;

/// <summary>Building replicas from the bytes other devices already hold (live switching), falling back to storage for the rest.</summary>
public sealed class ShardTransferTests : IDisposable
{
    private readonly LlamaModel model = ParallelFixtures.Untied();
    private readonly DevicePool pool = DevicePool.Logical(6);
    private readonly InMemoryWeightSource storage;
    private readonly Tensor reference;

    public ShardTransferTests()
    {
        // The "disk" copy: the same weights as the model, read only when no device holds a range.
        storage = new InMemoryWeightSource("test storage", model.Weights.Where(w => LlamaWeightNames.Expected(model.Config).Any(e => e.Name == w.Key))
            .ToDictionary(w => w.Key, w => w.Value.clone().DetachFromDisposeScope()));
        using var single = new SingleDeviceLlama(model, ownsModel: false);
        reference = ParallelFixtures.Script(single, model.Config.VocabSize);
    }

    public void Dispose()
    {
        reference.Dispose();
        storage.Dispose();
        model.Dispose();
    }

    private ParallelLlama Build(int tp, int pp, params int[] devices) =>
        ParallelLlama.Create(model.Config, devices.Select(i => pool.Devices[i]).ToArray(), tp, pp, storage, ScalarType.Float32);

    private Tensor Logits(ParallelLlama replica) => ParallelFixtures.Script(replica, model.Config.VocabSize);

    [Fact]
    public void ColdBuildReadsEverythingFromStorage()
    {
        using var cold = Build(2, 1, 0, 1);
        Assert.Equal(0, cold.BuildReport.BytesFromPeers + cold.BuildReport.BytesFromSameDevice);
        Assert.Equal(cold.ShardBytes.Sum(), cold.BuildReport.BytesFromStorage);
    }

    [Fact]
    public void Tp1ToTp2CopiesFromThePeerAndKeepsTheLogits()
    {
        using var tp1 = Build(1, 1, 0);
        using var tp2 = Build(2, 1, 0, 1);
        Assert.Equal(0, tp2.BuildReport.BytesFromStorage);
        // Rank 0 copies on device 0 itself; rank 1 (device 1) copies its half from device 0.
        Assert.Equal(tp2.ShardBytes[0], tp2.BuildReport.BytesFromSameDevice);
        Assert.Equal(tp2.ShardBytes[1], tp2.BuildReport.BytesFromPeers);
        using var fromStorage = ParallelLlama.Create(model.Config, [pool.Devices[2], pool.Devices[3]], 2, 1, storage, ScalarType.Float32,
            new ParallelLlamaOptions { CopyFromPeers = false });
        Assert.Equal(fromStorage.ShardBytes.Sum(), fromStorage.BuildReport.BytesFromStorage);
        using var hot = Logits(tp2);
        using var cold = Logits(fromStorage);
        Assert.True(hot.eq(cold).all().item<bool>(), "a replica built from peers must hold exactly the bytes a cold load gives");
        Assert.True(ParallelFixtures.MaxAbsDiff(reference, hot) < ParallelFixtures.Tolerance);
    }

    [Fact]
    public void TwoTp1ReplicasBecomeOneTp2AndBack()
    {
        var a = Build(1, 1, 0);
        var b = Build(1, 1, 1);
        Assert.Equal(a.ShardBytes[0], b.BuildReport.BytesFromPeers); // the second TP=1 copy came from the first
        var tp2 = Build(2, 1, 0, 1);
        Assert.Equal(0, tp2.BuildReport.BytesFromStorage);
        Assert.Equal(0, tp2.BuildReport.BytesFromPeers); // both devices already held everything they need
        a.Dispose();
        b.Dispose();
        Assert.All(pool.Devices.Take(2), d => Assert.Equal(tp2.ShardBytes[d.Index], d.HeldBytes));
        using (var logits = Logits(tp2))
            Assert.True(ParallelFixtures.MaxAbsDiff(reference, logits) < ParallelFixtures.Tolerance);

        // Back: each device's TP=1 replica is assembled from its own half plus the other device's half.
        using var back0 = Build(1, 1, 0);
        using var back1 = Build(1, 1, 1);
        tp2.Dispose();
        Assert.Equal(0, back0.BuildReport.BytesFromStorage + back1.BuildReport.BytesFromStorage);
        Assert.True(back0.BuildReport.BytesFromPeers > 0 && back0.BuildReport.BytesFromSameDevice > 0, back0.BuildReport.ToString());
        using var logitsBack = Logits(back1);
        Assert.True(ParallelFixtures.MaxAbsDiff(reference, logitsBack) < ParallelFixtures.Tolerance);
    }

    [Fact]
    public void PipelineChangeTakesStagesFromTheTensorParallelReplica()
    {
        using var tp2 = Build(2, 1, 0, 1);
        using var pp2 = Build(1, 2, 2, 3);
        using var tp2pp2 = Build(2, 2, 2, 3, 4, 5);
        Assert.Equal(0, pp2.BuildReport.BytesFromStorage);
        Assert.Equal(0, tp2pp2.BuildReport.BytesFromStorage);
        using var a = Logits(pp2);
        using var b = Logits(tp2pp2);
        Assert.True(ParallelFixtures.MaxAbsDiff(reference, a) < ParallelFixtures.Tolerance);
        Assert.True(ParallelFixtures.MaxAbsDiff(reference, b) < ParallelFixtures.Tolerance);
    }

    [Fact]
    public void BytesNoDeviceHoldsComeFromStorage()
    {
        var pp2 = Build(1, 2, 0, 1);
        // Device 1 has been given back: only stage 0 (embedding, layer 0) is still held anywhere.
        pool.Devices[1].Release(pp2);
        using var tp2 = Build(2, 1, 2, 3);
        // Every split weight once; the second rank also needs its own copy of each norm of the stage.
        long norm = 4L * model.Config.Dim;
        Assert.Equal(pp2.ShardBytes[0] + 2 * norm, tp2.BuildReport.BytesFromPeers);
        Assert.Equal(pp2.ShardBytes[1] + 3 * norm, tp2.BuildReport.BytesFromStorage);
        pp2.Dispose();
        using var logits = Logits(tp2);
        Assert.True(ParallelFixtures.MaxAbsDiff(reference, logits) < ParallelFixtures.Tolerance);
    }

    [Fact]
    public void StorageWithTheWrongShapeIsReportedByName()
    {
        var bad = LlamaWeightNames.Expected(model.Config).ToDictionary(e => e.Name, e => e.Name == LlamaWeightNames.Up(1) ? zeros(3, 3) : zeros(e.Shape));
        using var source = new InMemoryWeightSource("bad.safetensors", bad);
        var e = Assert.Throws<InvalidDataException>(() => ParallelLlama.Create(model.Config, [pool.Devices[0]], 1, 1, source, ScalarType.Float32));
        Assert.Contains("bad.safetensors: tensor 'model.layers.1.mlp.up_proj.weight' has shape [3, 3], the config expects [96, 64]", e.Message);
        Assert.All(pool.Devices, d => Assert.Equal(0, d.HeldBytes));
    }
}
