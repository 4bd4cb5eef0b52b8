using OServe.Contracts.Yaml;
using OServe.Models.Diagnostics;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Diagnostics;

/// <summary>
/// The device checks `oserve selftest` runs in the GPU bundle: on the CPU (fused path against the
/// reference path) always, and on CUDA where TorchSharp sees a GPU (this project's CI has none, so
/// that test skips; scripts/gpu/check.sh runs the same checks on a GPU machine).
/// </summary>
public sealed class DeviceSelfTestTests
{
    private static IReadOnlyList<SelfTestResult> Run(Device device)
    {
        var cards = new[] { "llama-2-7b.yaml", "llama-3-8b.yaml" }
            .Select(f => ContractYaml.ReadModelCard(Path.Combine(AppContext.BaseDirectory, "cards", f))).ToList();
        var log = new StringWriter();
        var results = DeviceSelfTest.Run(device, SharedData.Find("models", "stories260K"), cards, log);
        Assert.True(results.All(r => r.Passed), log.ToString());
        return results;
    }

    [Fact]
    public void Every_check_passes_on_the_cpu_with_the_fused_path()
    {
        var results = Run(CPU);
        Assert.Contains(results, r => r.Name.StartsWith("tp2 x pp2", StringComparison.Ordinal) && !r.Skipped);
        Assert.All(results.Where(r => r.Name.Contains("shape (1 layer", StringComparison.Ordinal)), r => Assert.True(r.Skipped));
    }

    [SkippableFact]
    public void Every_check_passes_on_cuda()
    {
        Skip.IfNot(DeviceSelection.IsCudaAvailable(),
            "no CUDA device visible to TorchSharp (the test build loads the CPU libtorch); scripts/gpu/check.sh runs these checks on a GPU machine");
        var results = Run(new Device(TorchSharp.DeviceType.CUDA, 0));
        Assert.DoesNotContain(results, r => r.Skipped && r.Name.Contains("shape (1 layer", StringComparison.Ordinal));
    }
}
