using OServe.Contracts;
using OServe.Engine.Control;
using OServe.Engine.Demo;
using Xunit;

namespace OServe.Engine.Tests.Demo;

public sealed class SwitchExplainerTests
{
    private static readonly Cluster Cluster = OServe.Engine.Control.CpuCostCalibration.Cluster(2, 1, 1e10, 1e10, perCore: true);
    private static readonly RequestTypeSpec[] Types =
        [new() { Name = "chat", InputTokens = 48, OutputTokens = 16 }, new() { Name = "long", InputTokens = 1024, OutputTokens = 4 }];

    private static Plan Shape(string shape, int version) => DemoShapes.PlanOf(shape, Cluster, "m", Types, version);

    private static IReadOnlyList<DemoPlanning.Candidate> Candidates(IReadOnlyList<double> forecast) =>
        [new(DemoShapes.Tp2, 10, forecast.Sum(), 0.4), new(DemoShapes.TwoTp1, forecast.Sum(), forecast.Sum(), 0.2)];

    [Fact]
    public void An_applied_switch_is_told_with_its_forecast_candidates_choice_and_gain()
    {
        var log = new ControllerLog();
        string[] names = ["chat", "long"];
        log.Append(new ForecastEvent(1.0, 0, names, [0, 3], [0.02, 3]));
        log.Append(new SwitchDecisionEvent(1.1, 0, SwitchDecisionKind.Keep, "nothing moves", 0));
        log.Append(new ForecastEvent(5.0, 4, names, [14, 0], [15, 0.02]));
        log.Append(new PlanEvent(5.1, 4, Shape(DemoShapes.TwoTp1, 2), 0.05, ""));
        log.Append(new SwitchDecisionEvent(5.1, 4, SwitchDecisionKind.Switch, "serves 5 more requests over the window, loses 0 while switching", 0.004));
        log.Append(new SwitchResultEvent(5.3, 4, 1, 2, new PlanSwitchResult(true, 0.2, "0 kept, 2 started, 1 stopped")));
        var run = new RunResult(RunResult.Adaptive, 1, new RunMetrics(10, 10, 1, 1, 1, 1, 1), new AccountingResult(10, 10, 10, 0), log,
            Shape(DemoShapes.Tp2, 1), Shape(DemoShapes.TwoTp1, 2));

        var lines = SwitchExplainer.Explain(run, Candidates).ToArray();

        Assert.Equal(1, run.NumSwitches);
        Assert.Contains("switch 1 of adaptive #1 at 5.3 s (window 4): 1 x tp2 -> 2 x tp1", lines[0]);
        Assert.Contains("forecast for the next window: chat 15.00, long 0.02 req/s", lines[1]);
        Assert.Contains(lines, l => l.Contains("candidate 1 x tp2") && l.Contains("(was running)"));
        Assert.Contains(lines, l => l.Contains("candidate 2 x tp1") && l.Contains("<- chosen"));
        Assert.Contains(lines, l => l.Contains("expected gain: serves 5 more requests over the window"));
        Assert.Contains(lines, l => l.Contains("applied in 0.20 s: 0 kept, 2 started, 1 stopped"));
    }

    [Fact]
    public void A_run_without_switches_says_so_and_shows_what_the_planner_saw_at_its_busiest()
    {
        var log = new ControllerLog();
        log.Append(new ForecastEvent(1.0, 0, ["chat", "long"], [1, 3], [1, 3]));
        log.Append(new ForecastEvent(2.0, 1, ["chat", "long"], [9, 0], [9, 0.02]));
        log.Append(new SwitchDecisionEvent(2.1, 1, SwitchDecisionKind.Keep, "gain 0 requests vs 0 lost", 0));
        var run = new RunResult(RunResult.Adaptive, 2, new RunMetrics(10, 10, 1, 1, 1, 1, 1), new AccountingResult(10, 10, 10, 0), log,
            Shape(DemoShapes.Tp2, 1), Shape(DemoShapes.Tp2, 1));

        var lines = SwitchExplainer.Explain(run, Candidates).ToArray();

        Assert.Equal(0, run.NumSwitches);
        Assert.Contains("adaptive #2: no switch applied; it served 1 x tp2 throughout", lines[0]);
        Assert.Contains("window 1: chat 9.00, long 0.02 req/s", lines[1]);
        Assert.Contains(lines, l => l.Contains("and decided: keep, gain 0 requests vs 0 lost"));
    }
}
