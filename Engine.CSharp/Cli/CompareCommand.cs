using System.CommandLine;
using System.Globalization;
using OServe.Engine.Simulation;
using OServe.Planner.CostModel;

namespace OServe.Engine.Cli;

/// <summary>
/// <c>oserve compare SCENARIO</c>: OServe against the best static homogeneous deployment, reload
/// switching and the paper's heuristic, on the same trace, cost model and simulator. With
/// <c>--sweep</c>, also each system's maximum sustainable load under the SLO (bisection on the rate scale).
/// </summary>
public static class CompareCommand
{
    private static readonly ServingSystem[] Systems =
        [ServingSystem.OServe, ServingSystem.StaticHomogeneous, ServingSystem.StaticVllmDefault, ServingSystem.Reload, ServingSystem.PaperHeuristic];

    public static Command Create()
    {
        var scenario = new Argument<string>("scenario") { Description = "Scenario file or built-in scenario name" };
        var sweep = new Option<bool>("--sweep") { Description = "Also find each system's highest rate scale that meets the SLO attainment target (bisection)" };
        var target = new Option<double>("--slo-target") { Description = "SLO attainment the sweep requires (fraction of requests meeting every SLO)", DefaultValueFactory = _ => 0.9 };
        var steps = new Option<int>("--sweep-steps") { Description = "Bisection steps of the sweep", DefaultValueFactory = _ => 5 };
        var perWindow = new Option<bool>("--per-window") { Description = "Also print, per window, the deployment OServe, the best static and the vLLM default ran, with the window's P99 TTFT and E2E" };
        var common = SimulationOptions.Create();
        var command = new Command("compare", "Run OServe, the best static homogeneous deployment, reload switching and the paper's heuristic on the same simulated trace; print ratios, write JSON and plots.")
        {
            scenario, sweep, target, steps, perWindow,
        };
        common.AddTo(command);
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            string scenarioRef = parse.GetValue(scenario)!;
            double sloTarget = parse.GetValue(target);
            if (!(sloTarget > 0 && sloTarget <= 1)) throw new CliUsageException($"--slo-target must be in (0, 1], got {sloTarget}");
            var w = common.Load(parse, scenarioRef);
            var k = common.Coefficients(parse);
            var service = common.ServiceModel(parse, k);
            var verification = common.Verification(parse);
            var results = ProgressReporter.Run(output, SystemRunner.Name(Systems[0]), w.DurationS, (next, progress) =>
            {
                var list = new List<SystemResult>();
                StaticBaselines? statics = null;
                foreach (var system in Systems)
                {
                    if (list.Count > 0) next(SystemRunner.Name(system));
                    switch (system)
                    {
                        // Every static shape once; the vLLM default is one of them under its own name.
                        case ServingSystem.StaticHomogeneous:
                            statics = SystemRunner.Statics(w, k, progress);
                            list.AddRange(statics.All);
                            break;
                        case ServingSystem.StaticVllmDefault:
                            if (statics?.VllmDefault is { } vllm) list.Add(vllm);
                            break;
                        default:
                            list.Add(RunSystem(w, system, k, progress, service, verification));
                            break;
                    }
                }
                return list;
            });
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{w.Scenario.Name}: {w.Model.Name} on {w.Cluster.Name} ({w.Cluster.NumGpus} GPUs), {w.Requests.Length} requests over {w.DurationS / 60:F1} min from {w.Trace.Source}"));
            ReportPrinter.PrintComparison(output, results, w.ContextLine);
            if (parse.GetValue(perWindow)) ReportPrinter.PrintPerWindow(output, results, w.Scenario.Workload.WindowS);
            output.WriteLine(service is SimulatedServiceModel sm
                ? string.Create(CultureInfo.InvariantCulture, $"planners' service model: simulated, {sm.NumCurves} (config, type) curves measured in {sm.MeasureSeconds:F1} s (not in plan s)")
                : "planners' service model: analytic");

            IReadOnlyList<SweepResult>? sweepResults = null;
            if (parse.GetValue(sweep))
            {
                double baseScale = common.RateScale(parse);
                var swept = Systems.Where(s => s != ServingSystem.StaticVllmDefault || SystemRunner.VllmDefaultTp(w) is not null).ToArray();
                sweepResults = ProgressReporter.Run(output, "sweep", swept.Length, (_, progress) =>
                    swept.Select((system, i) =>
                    {
                        progress(i);
                        return Sweep(s => common.Load(parse, scenarioRef, s), system, k, service, verification, baseScale, sloTarget, parse.GetValue(steps));
                    }).ToList());
                PrintSweep(output, sweepResults, sloTarget);
                output.WriteLine($"requests over the context (every rate scale): {w.ContextLine}");
            }
            if (common.OutputDir(parse) is { } dir)
            {
                ResultWriter.Write(dir, w, results, sweepResults is null ? null : new { SloTarget = sloTarget, Sweep = sweepResults });
                output.WriteLine($"wrote {dir}: results.json, plans-*.yaml, rate-per-type.png, plan-switches.png, p99-e2e-over-time.png, e2e-cdf.png");
            }
            return OServeCli.ExitOk;
        });
        return command;
    }

    /// <param name="staticSloTolerance">How the static shape is chosen (<see cref="SystemRunner.BestStaticIndex"/>): the sweep
    /// passes 0, so static is its best shape on SLO attainment, the sweep's criterion.</param>
    private static SystemResult RunSystem(ScenarioWorkload w, ServingSystem system, CostCoefficients k, Action<double> progress, IServiceModel? service,
        VerificationOptions? verification, double staticSloTolerance = VerificationOptions.DefaultSloTolerance) => system switch
    {
        ServingSystem.StaticHomogeneous => SystemRunner.BestStatic(w, k, progress, staticSloTolerance).Best,
        ServingSystem.StaticVllmDefault => VllmDefault(w, k, progress),
        _ => SimulateCommand.Run(w, system, k, progress, service, verification),
    };

    private static SystemResult VllmDefault(ScenarioWorkload w, CostCoefficients k, Action<double> progress)
    {
        if (SystemRunner.VllmDefaultTp(w) is not int tp || SystemRunner.Homogeneous(w, tp, 1, k) is not { } plan)
            throw new PlanningException($"{w.Model.Name}: no TP degree leaves 30% of GPU memory for KV on {w.Cluster.Name}");
        var name = SystemRunner.Name(ServingSystem.StaticVllmDefault);
        return new SystemResult(new SystemPlans(ServingSystem.StaticVllmDefault, [plan], 0, 0, 0, name), SystemRunner.Simulate(w, [plan], k, progress));
    }

    /// <summary>The highest rate scale (and its request rate) at which the system keeps SLO attainment at or above the target.</summary>
    public sealed record SweepResult(string System, double MaxRateScale, double MaxRequestRate, int NumRuns);

    private static SweepResult Sweep(Func<double, ScenarioWorkload> load, ServingSystem system, CostCoefficients k, IServiceModel? service,
        VerificationOptions? verification, double start, double target, int steps)
    {
        int runs = 0;
        double rate = 0;
        bool Meets(double scale)
        {
            runs++;
            var w = load(scale);
            var r = RunSystem(w, system, k, _ => { }, service, verification, staticSloTolerance: 0);
            if (r.Report.Overall.SloAttainment >= target) rate = Math.Max(rate, w.Requests.Length / Math.Max(1, w.DurationS));
            return r.Report.Overall.SloAttainment >= target;
        }
        double lo = 0, hi = start;
        // Bracket: grow until the SLO breaks (or 64x), shrink until it holds (or 1/64).
        if (Meets(hi))
        {
            lo = hi;
            while (hi < start * 64 && Meets(hi * 2)) { lo = hi * 2; hi *= 2; }
            hi *= 2;
        }
        else
        {
            while (hi > start / 64 && !Meets(hi / 2)) hi /= 2;
            lo = hi / 2;
            if (hi <= start / 64) return new SweepResult(SystemRunner.Name(system), 0, 0, runs);
        }
        for (int i = 0; i < steps; i++)
        {
            double mid = (lo + hi) / 2;
            if (Meets(mid)) lo = mid; else hi = mid;
        }
        return new SweepResult(SystemRunner.Name(system), lo, rate, runs);
    }

    private static void PrintSweep(TextWriter o, IReadOnlyList<SweepResult> sweep, double target)
    {
        var oserve = sweep.First(s => s.System == SystemRunner.Name(ServingSystem.OServe));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"max sustainable load (SLO attainment >= {100 * target:F0}%):"));
        o.WriteLine($"{"system",-22} {"rate scale",10} {"req/s",8} {"runs",5} {"OServe x",9}");
        foreach (var s in sweep)
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{s.System,-22} {s.MaxRateScale,10:F3} {s.MaxRequestRate,8:F2} {s.NumRuns,5} {(s.MaxRateScale > 0 ? oserve.MaxRateScale / s.MaxRateScale : double.PositiveInfinity),9:F2}"));
    }
}
