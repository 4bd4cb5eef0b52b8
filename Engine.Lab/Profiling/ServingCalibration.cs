using OServe.Engine.Simulation;
using OServe.Models;
using OServe.Planner.Workload;

namespace OServe.Engine.Profiling;

/// <summary>What serving costs beyond the profiled steps, measured on a calibration workload.</summary>
/// <param name="Factors">Real steps while serving over the profile's prediction for the same shapes, summed per kind.</param>
/// <param name="FrontendSeconds">Mean TTFT the load generator saw beyond the simulator's with <see cref="Factors"/> applied: HTTP, tokenisation, hand-off, delivery.</param>
public sealed record ServingCalibrationResult(ServingFactors Factors, double FrontendSeconds, int NumDecodeSteps, int NumPromptSteps, int NumRequests, string Workload)
{
    public int NumSteps => NumDecodeSteps + NumPromptSteps;
}

/// <summary>
/// <c>oserve profile</c>'s last phase. The grid times steps with nothing else running; a serving
/// engine shares the cores with its HTTP frontend, the load generator and the SSE streams, so its
/// steps run slower and every request spends some time outside the engine. This replays a synthetic
/// calibration workload (the fitted Azure conversation and code length distributions, not a trace)
/// through the real server, compares the logged steps with the profile, and measures the two terms
/// the simulator then applies. Fidelity checks on real traces are therefore out of sample.
/// </summary>
public static class ServingCalibration
{
    /// <summary>About 15 s on 2 cores: conversation and code requests at their Azure rates, lengths x0.1.</summary>
    public static FidelityOptions DefaultWorkload { get; } = new()
    {
        SyntheticClasses = [SyntheticWorkload.azureConv, SyntheticWorkload.azureCode],
        NumRequests = 120,
        TimeScale = 1.0,
        LengthScale = 0.1,
        MaxNumSeqs = 16,
        Seed = 1127,
    };

    public static async Task<ServingCalibrationResult> RunAsync(LoadedModel model, MeasuredIterationTime profiled, FidelityOptions? workload = null,
        TextWriter? log = null, CancellationToken cancellationToken = default)
    {
        var real = await FidelityRun.RunRealAsync(workload ?? DefaultWorkload, model, log, cancellationToken);
        var alone = profiled.WithServing(ServingFactors.None, 0);
        if (real.Steps.Count == 0)
            throw new InvalidOperationException("serving calibration: the engine ran no steps");
        var decodeOnly = StepComparison.Of(real.Steps.Where(s => s.Shape.NumPrefills == 0).ToList(), alone.Seconds);
        var withPrompt = StepComparison.Of(real.Steps.Where(s => s.Shape.NumPrefills > 0).ToList(), alone.Seconds);
        static double Ratio(StepComparison c) => c.PredictedSeconds > 0 ? c.MeasuredSeconds / c.PredictedSeconds : 1;
        var factors = new ServingFactors(Ratio(decodeOnly), Ratio(withPrompt));
        var simulated = real.Simulate(alone.WithServing(factors, 0), frontendSeconds: 0);
        var measured = real.Measured;
        double frontend = Math.Max(0, measured.Average(r => r.Ttft) - simulated.Average(r => r.Ttft));
        return new ServingCalibrationResult(factors, frontend, decodeOnly.NumSteps, withPrompt.NumSteps, measured.Count, real.Workload.Description);
    }
}
