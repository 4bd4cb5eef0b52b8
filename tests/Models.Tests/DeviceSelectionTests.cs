using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests;

public sealed class DeviceSelectionTests
{
    [Fact]
    public void Cpu_and_auto_resolve_and_bad_values_are_named()
    {
        Assert.Equal(TorchSharp.DeviceType.CPU, DeviceSelection.Parse("cpu").type);
        Assert.Equal(DeviceSelection.IsCudaAvailable() ? TorchSharp.DeviceType.CUDA : TorchSharp.DeviceType.CPU, DeviceSelection.Parse("AUTO").type);
        Assert.Contains("'gpu' is not one of auto, cpu, cuda, cuda:N", Assert.Throws<ArgumentException>(() => DeviceSelection.Parse("gpu")).Message);
        Assert.Contains("'cuda:x' is not cuda:N", Assert.Throws<ArgumentException>(() => DeviceSelection.Parse("cuda:x")).Message);
        Assert.Equal(ScalarType.Float32, DeviceSelection.DefaultDType(CPU));
    }

    [SkippableFact]
    public void Cuda_is_refused_with_the_reason_where_torchsharp_sees_none()
    {
        Skip.If(DeviceSelection.IsCudaAvailable(), "this machine has CUDA");
        var e = Assert.Throws<ArgumentException>(() => DeviceSelection.Parse("cuda:0"));
        Assert.Contains("CUDA is not available to TorchSharp in this process", e.Message);
    }
}
