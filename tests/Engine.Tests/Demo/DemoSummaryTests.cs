using OServe.Contracts;
using OServe.Engine.Demo;
using Xunit;

namespace OServe.Engine.Tests.Demo;

public sealed class DemoSummaryTests
{
    private static readonly Plan Empty = new() { Model = "m", Cluster = "c", RequestTypes = [], Replicas = [], Routing = [] };

    private static RunResult Run(string deployment, int repeat, double p99E2e, double p99Ttft = 100, int completed = 50, AccountingResult? books = null) =>
        new(deployment, repeat, new RunMetrics(50, completed, p99Ttft, p99E2e, p99E2e / 2, 100, 10), books ?? new AccountingResult(50, 50, 50, 0), null, Empty, Empty);

    private static DemoSummary Summary(double[] adaptive, double[] tp2, double[] twoTp1) => new(
        adaptive.Select((v, i) => Run(RunResult.Adaptive, i + 1, v))
            .Concat(tp2.Select((v, i) => Run("static 1 x tp2", i + 1, v)))
            .Concat(twoTp1.Select((v, i) => Run("static 2 x tp1", i + 1, v))).ToArray());

    [Fact]
    public void A_win_whose_ranges_do_not_overlap_is_beyond_the_spread()
    {
        var s = Summary([100, 110], [300, 400], [150, 160]);
        Assert.True(s.TargetMet);
        var v = s.Verdicts().Single(v => v.Metric == "P99 E2E" && v.Static == "static 2 x tp1");
        Assert.True(v.Better && v.BeyondSpread);
        Assert.Equal(155.0 / 105, v.Factor, 9);
        Assert.Contains("lower by 32%, beyond the run-to-run spread", v.Describe());
        Assert.Contains("verdict: adaptive beat BOTH static deployments on P99 E2E, beyond the run-to-run spread", s.Render());
    }

    [Fact]
    public void A_lower_mean_inside_the_spread_is_not_a_clear_win()
    {
        var s = Summary([100, 170], [300, 400], [150, 160]);
        var v = s.Verdicts().Single(v => v.Metric == "P99 E2E" && v.Static == "static 2 x tp1");
        Assert.True(v.Better);
        Assert.False(v.BeyondSpread);
        Assert.False(s.TargetMet);
        Assert.Contains("WITHIN the run-to-run spread", v.Describe());
        Assert.Contains("not beyond the spread against static 2 x tp1: not a clear win", s.Render());
    }

    [Fact]
    public void A_worse_adaptive_run_is_called_worse()
    {
        var s = Summary([200, 210], [300, 400], [150, 160]);
        var v = s.Verdicts().Single(v => v.Metric == "P99 E2E" && v.Static == "static 2 x tp1");
        Assert.False(v.Better);
        Assert.Contains("WORSE by 32%", v.Describe());
        Assert.Contains("verdict: adaptive did NOT beat static 2 x tp1 on P99 E2E", s.Render());
    }

    [Fact]
    public void One_replay_each_never_claims_to_beat_the_noise()
    {
        var s = Summary([100], [300], [150]);
        Assert.False(s.TargetMet);
        Assert.All(s.Verdicts().Where(v => v.Metric == "P99 E2E"), v => Assert.Contains("one replay each: spread not measured", v.Describe()));
    }

    [Fact]
    public void Completed_requests_count_higher_as_better()
    {
        var v = Verdict.Of("completed", "static", Spread.Of([50, 50]), Spread.Of([40, 45]), lowerIsBetter: false);
        Assert.True(v.Better && v.BeyondSpread);
        Assert.Equal(50 / 42.5, v.Factor, 9);
    }

    [Fact]
    public void The_table_shows_each_deployments_mean_and_range()
    {
        var text = Summary([100, 110], [300, 400], [150, 160]).Render();
        Assert.Contains("105 [100..110]", text);
        Assert.Contains("350 [300..400]", text);
        Assert.Contains("2 replay(s) of each deployment", text);
    }

    [Fact]
    public void A_lost_or_duplicated_request_in_any_replay_fails_the_no_loss_check()
    {
        var ok = Summary([100], [300], [150]);
        Assert.True(ok.LostNone);
        var lost = new DemoSummary([.. ok.Runs, Run("static 2 x tp1", 2, 150, books: new AccountingResult(50, 49, 49, 0))]);
        Assert.False(lost.LostNone);
        Assert.Contains("REQUESTS LOST OR DUPLICATED: static 2 x tp1 #2: 49/50 completed (1 LOST)", lost.Render());
    }

    [Fact]
    public void A_busy_machine_is_said_next_to_the_figures()
    {
        int cores = Environment.ProcessorCount;
        RunResult WithLoad(string d, double load) => Run(d, 1, 100) with { Metrics = new RunMetrics(50, 50, 1, 100, 50, 100, 10) { LoadAverage = load } };
        var idle = new DemoSummary([WithLoad(RunResult.Adaptive, 0.5), WithLoad("static 1 x tp2", 1.0)]);
        Assert.Contains("0.5..1.0 on", idle.LoadLine());
        Assert.DoesNotContain("OTHER WORK", idle.LoadLine());
        var busy = new DemoSummary([WithLoad(RunResult.Adaptive, 0.5), WithLoad("static 1 x tp2", cores + 2.5)]);
        Assert.Contains("OTHER WORK WAS RUNNING", busy.LoadLine());
        Assert.Contains("OTHER WORK WAS RUNNING", busy.Render());
        Assert.Null(new DemoSummary([Run(RunResult.Adaptive, 1, 100)]).LoadLine()); // unknown load: no line rather than a guess
    }

    [Fact]
    public void Each_request_type_has_its_own_p99_row()
    {
        var run = Run(RunResult.Adaptive, 1, 100) with { Metrics = new RunMetrics(50, 50, 1, 100, 50, 100, 10) { P99E2eLongMs = 321, P99E2eChatMs = 123 } };
        var text = new DemoSummary([run]).Render();
        Assert.Matches(@"P99 E2E long \(ms\)\s+321", text);
        Assert.Matches(@"P99 E2E chat \(ms\)\s+123", text);
    }

    [Fact]
    public void A_types_p99_counts_only_the_requests_that_succeeded()
    {
        static OServe.Engine.Benchmarking.RequestOutcome O(bool ok, double latencyS) => new() { Success = ok, PromptLen = 16, Latency = latencyS };
        Assert.Equal(200, RunMetrics.P99E2eOfMs([O(true, 0.2), O(false, 9.0)]), 9);
        Assert.Equal(100 + 0.99 * 100, RunMetrics.P99E2eOfMs([O(true, 0.1), O(true, 0.2)]), 9); // numpy's linear interpolation
        Assert.True(double.IsNaN(RunMetrics.P99E2eOfMs([O(false, 1)])));
    }
}
