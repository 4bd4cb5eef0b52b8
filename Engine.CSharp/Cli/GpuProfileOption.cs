using System.CommandLine;
using Microsoft.FSharp.Core;
using OServe.Planner.CostModel;

namespace OServe.Engine.Cli;

/// <summary>
/// <c>--gpu-profile builtin|none|PATH</c>: the measured GPU step-time profile the cost model uses
/// (built-in: derived from ../shared/calibration/h200-shapes.json; none: the analytic roofline; a
/// path: a profile written by scripts/calibration/derive_gpu_profile.py from your own GPU).
/// </summary>
public static class GpuProfileOption
{
    public static Option<string?> Create() => new("--gpu-profile")
    {
        Description = "GPU step-time profile: 'builtin' (measured on an H200, the default), 'none' (analytic roofline) or a profile file",
    };

    public static CostCoefficients Apply(string? value, CostCoefficients k) => value switch
    {
        null or "builtin" => CostCoefficientsModule.withGpuSteps(FSharpOption<GpuStepProfile>.Some(GpuStepProfileModule.builtIn.Value), k),
        "none" => CostCoefficientsModule.withGpuSteps(FSharpOption<GpuStepProfile>.None, k),
        var path => GpuStepProfileModule.load(path) switch
        {
            { IsOk: true } ok => CostCoefficientsModule.withGpuSteps(FSharpOption<GpuStepProfile>.Some(ok.ResultValue), k),
            var failed => throw new CliUsageException($"--gpu-profile: {failed.ErrorValue}"),
        },
    };
}
