using System.Globalization;
using OServe.Contracts;
using OServe.Engine.Simulation;
using OServe.Planner.Workload;
using Xunit;
using static OServe.Engine.Tests.Simulation.SimulationTestKit;

namespace OServe.Engine.Tests.Simulation;

/// <summary>Plan verification: candidate ranking, the forecast workload, and that it never reads the future.</summary>
public sealed class PlanVerificationTests
{
    private static readonly VerificationOptions Defaults = new();

    private static CandidateScore S(string label, double slo, double p99, bool keep = false) => new(label, keep, 1000, slo, p99, p99 / 3);

    [Fact]
    public void Choose_PrefersSloAttainment_ThenTheLowerP99()
    {
        Assert.Equal(1, PlanVerifier.Choose([S("a", 0.90, 5), S("b", 0.95, 9), S("c", 0.80, 2)], Defaults));
        // Within the tolerance, attainment ties and P99 decides.
        Assert.Equal(0, PlanVerifier.Choose([S("a", 0.998, 5), S("b", 1.0, 9)], Defaults));
    }

    [Fact]
    public void BestStatic_TakesTheLowestP99_AmongShapesWithinTheToleranceOfTheBestAttainment()
    {
        // 99.9% with P99 14 s against 100% with P99 21 s: the same attainment within half a point, the lower P99 wins.
        Assert.Equal(0, SystemRunner.BestStaticIndex([(0.999, 14.0), (1.0, 21.0)], VerificationOptions.DefaultSloTolerance));
        // A clearly lower attainment is not rescued by its P99.
        Assert.Equal(1, SystemRunner.BestStaticIndex([(0.98, 5.0), (1.0, 21.0), (0.999, 30.0)], VerificationOptions.DefaultSloTolerance));
        // Tolerance 0: strict attainment order, then P99.
        Assert.Equal(1, SystemRunner.BestStaticIndex([(0.999, 14.0), (1.0, 21.0)], 0));
        Assert.Equal(2, SystemRunner.BestStaticIndex([(0.9, 3.0), (1.0, 21.0), (1.0, 20.0)], 0));
        Assert.Throws<ArgumentException>(() => SystemRunner.BestStaticIndex([], 0));
    }

    [Fact]
    public void Choose_LeavesTheCurrentPlan_OnlyForAClearGain()
    {
        // 4% lower P99 at equal attainment does not pay for a switch (needs 5%); 20% does.
        Assert.Equal(0, PlanVerifier.Choose([S("keep", 0.99, 10, keep: true), S("new", 0.99, 9.6)], Defaults));
        Assert.Equal(1, PlanVerifier.Choose([S("keep", 0.99, 10, keep: true), S("new", 0.99, 8)], Defaults));
        // Half a point more attainment does not either (needs one point); three points do, whatever the P99.
        Assert.Equal(0, PlanVerifier.Choose([S("keep", 0.90, 10, keep: true), S("new", 0.905, 10)], Defaults));
        Assert.Equal(1, PlanVerifier.Choose([S("keep", 0.90, 10, keep: true), S("new", 0.93, 14)], Defaults));
    }

    private static CandidateScore M(string label, double slo, double p99, double mean, bool keep = false) => new(label, keep, 1000, slo, p99, mean);

    [Fact]
    public void Choose_RanksOverloadedPlans_ByTheQueueingTheyLeave_NotByAttainment()
    {
        // The rate swing's peak (window 6): a plan that starves long requests meets more SLOs (30%
        // against 21%) but clears the load far slower (mean 45.7 s, P99 307 s): it must not win.
        Assert.Equal(0, PlanVerifier.Choose([M("keep", 0.205, 110, 25.0, keep: true), M("maxtp2", 0.300, 307, 45.7), M("cpsat", 0.236, 102, 29.8)], Defaults));
        // Without a current plan the same ranking holds.
        Assert.Equal(1, PlanVerifier.Choose([M("maxtp2", 0.300, 307, 45.7), M("tp4", 0.205, 110, 25.0)], Defaults));
        // Leaving an overloaded plan needs a mean E2E 20% lower: 10% does not pay, 40% does.
        Assert.Equal(0, PlanVerifier.Choose([M("keep", 0.70, 100, 30, keep: true), M("new", 0.70, 90, 27)], Defaults));
        Assert.Equal(1, PlanVerifier.Choose([M("keep", 0.70, 100, 30, keep: true), M("new", 0.60, 90, 18)], Defaults));
        // A plan that is not overloaded still beats overloaded ones by attainment, whatever their means.
        Assert.Equal(1, PlanVerifier.Choose([M("keep", 0.50, 100, 10, keep: true), M("new", 0.95, 120, 40)], Defaults));
    }

    [Fact]
    public void PeakRates_ScaleTheForecastMix_ToTheBusiestPastWindowsTotal()
    {
        // Type 0 busy in window 0 (2/s), type 1 busy in window 1 (2/s): no window ever had 4/s.
        var requests = Enumerable.Range(0, 120).Select(i => new SimRequest(i, i * 0.5, 100, 10, 0))
            .Concat(Enumerable.Range(0, 120).Select(i => new SimRequest(120 + i, 60 + i * 0.5, 100, 10, 1)))
            .OrderBy(r => r.ArrivalS).Select((r, i) => r with { Id = i }).ToArray();
        var peak = ForecastWorkload.PeakRates(requests, 2, 60, 2, [0.5, 0.5]);
        Assert.Equal(2.0, peak.Sum(), 6);
        Assert.Equal(peak[0], peak[1], 6);
        // A forecast above every past window is its own peak.
        Assert.Equal([3.0, 1.0], ForecastWorkload.PeakRates(requests, 2, 60, 2, [3.0, 1.0]));
    }

    [Fact]
    public void Score_RanksFourReplicasAboveOne_UnderALoadOneCannotCarry()
    {
        var cluster = H100Cluster();
        var card = Llama13B;
        var types = new[] { Type("t", 800, 100) };
        Plan Replicas(int n) => Plan(Enumerable.Range(0, n).Select(i => Replica($"r{i}", 1, $"node0/{i}")).ToList(), types,
            new Dictionary<string, Dictionary<string, double>> { ["t"] = Enumerable.Range(0, n).ToDictionary(i => $"r{i}", _ => 1.0) });
        var requests = Poisson(seed: 3, rate: 40, durationS: 60, meanInput: 800, meanOutput: 100);
        var slo = new Slo { TtftS = 1.0, TpotS = 0.1 };
        var models = CostModel(cluster, card).For;
        var switching = new SwitchCosts(cluster, card.KvBytesPerToken);
        var one = PlanVerifier.Score(new PlanCandidate("one", Replicas(1)), null, [requests], 0, models, switching, 64, slo);
        var four = PlanVerifier.Score(new PlanCandidate("four", Replicas(4)), null, [requests], 0, models, switching, 64, slo);
        Assert.Equal(requests.Length, four.NumRequests);
        Assert.True(four.SloAttainment > one.SloAttainment + 0.2, $"four {four.SloAttainment:F3} vs one {one.SloAttainment:F3}");
        Assert.True(four.P99E2e < one.P99E2e);
        Assert.Equal(1, PlanVerifier.Choose([one, four], Defaults));
    }

    private static SimRequest[] Trace(int n, double gapS, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(i => new SimRequest(i, i * gapS * (0.5 + rng.NextDouble()), 100 + rng.Next(3000), 5 + rng.Next(300), i % 2)).ToArray();
    }

    private static readonly RequestType[] TwoTypes =
    [
        // Id, centroid in/out, mean in/out, log spread in/out, share
        new(0, 500, 200, 600, 250, 0.5, 0.5, 0.5),
        new(1, 2000, 20, 2200, 25, 0.5, 0.5, 0.5),
    ];

    /// <summary>The same requests up to <paramref name="cutS"/>; after it, other arrival times and lengths.</summary>
    private static SimRequest[] OtherFuture(SimRequest[] trace, double cutS) =>
        trace.Select(r => r.ArrivalS < cutS ? r : r with { ArrivalS = cutS + (r.ArrivalS - cutS) / 3, InputTokens = 7, OutputTokens = 3000, TypeIndex = 1 - r.TypeIndex }).ToArray();

    [Fact]
    public void ForecastWorkload_ReadsNothingAfterTheWindowStart()
    {
        var trace = Trace(2000, 0.3, seed: 1);
        const double windowS = 60;
        for (int window = 1; window <= 4; window++)
        {
            double start = window * windowS;
            var other = OtherFuture(trace, start);
            var rates = ForecastWorkload.Rates(trace, 2, windowS, window);
            Assert.Equal(rates, ForecastWorkload.Rates(other, 2, windowS, window));
            var peak = ForecastWorkload.PeakRates(trace, 2, windowS, window, rates);
            Assert.Equal(peak, ForecastWorkload.PeakRates(other, 2, windowS, window, rates));
            var drawn = ForecastWorkload.Draw(trace, start, 180, rates, TwoTypes, 150, 4096, seed: 9);
            Assert.Equal(drawn, ForecastWorkload.Draw(other, start, 180, rates, TwoTypes, 150, 4096, seed: 9));
            Assert.NotEmpty(drawn);
        }
    }

    [Fact]
    public void ForecastWorkload_Draw_ReplaysThePastAtTheForecastRate()
    {
        var trace = Trace(2000, 0.3, seed: 2);
        double[] rates = [2.0, 0.5];
        var drawn = ForecastWorkload.Draw(trace, 240, 180, rates, TwoTypes, 300, 4096, seed: 4);
        for (int j = 0; j < 2; j++)
        {
            int count = drawn.Count(r => r.TypeIndex == j);
            Assert.InRange(count, rates[j] * 300 * 0.9, rates[j] * 300 * 1.1);
        }
        // Lengths are those of past requests of the same type.
        var past = trace.Where(r => r.ArrivalS < 240).Select(r => (r.InputTokens, r.OutputTokens, r.TypeIndex)).ToHashSet();
        Assert.All(drawn, r => Assert.Contains((r.InputTokens, r.OutputTokens, r.TypeIndex), past));
        Assert.True(drawn.Zip(drawn.Skip(1)).All(p => p.First.ArrivalS <= p.Second.ArrivalS));
        Assert.Equal(Enumerable.Range(0, drawn.Length), drawn.Select(r => r.Id));
    }

    [Fact]
    public void ForecastWorkload_WithoutHistory_DrawsAroundTheTypeCentre()
    {
        var drawn = ForecastWorkload.Draw([], 0, 180, [1.0, 0.0], TwoTypes, 400, 4096, seed: 5);
        Assert.InRange(drawn.Length, 320, 480);
        Assert.All(drawn, r => Assert.Equal(0, r.TypeIndex));
        double geoMeanInput = Math.Exp(drawn.Average(r => Math.Log(r.InputTokens)));
        Assert.InRange(geoMeanInput, 400, 620);
    }

    private static string AzureCsv(IEnumerable<(double At, int Input, int Output)> rows)
    {
        var t0 = new DateTime(2023, 11, 16, 18, 0, 0);
        return "TIMESTAMP,ContextTokens,GeneratedTokens\n" + string.Join("\n", rows.Select(r =>
            string.Create(CultureInfo.InvariantCulture, $"{t0.AddTicks((long)(r.At * TimeSpan.TicksPerSecond)):yyyy-MM-dd HH:mm:ss.fffffff},{r.Input},{r.Output}")));
    }

    [Fact]
    public void VerifiedSchedule_PlansEachWindow_WithoutReadingArrivalsAfterIt()
    {
        var dir = Directory.CreateTempSubdirectory("oserve-verify-").FullName;
        try
        {
            // Two traces with the same requests (so the same fitted types) up to 90 s, then other arrival times.
            var rng = new Random(8);
            var rows = Enumerable.Range(0, 700).Select(i => (At: i * 0.25, Input: rng.Next(2) == 0 ? 300 + rng.Next(300) : 1500 + rng.Next(1000), Output: 20 + rng.Next(200))).ToList();
            const double cut = 90;
            File.WriteAllText(Path.Combine(dir, "a.csv"), AzureCsv(rows));
            File.WriteAllText(Path.Combine(dir, "b.csv"), AzureCsv(rows.Select(r => r.At < cut ? r : r with { At = cut + (r.At - cut) / 2 })));
            var scenario = new Scenario
            {
                Name = "verify",
                Cluster = "a100-1x8",
                Model = "Llama-2-13B",
                Workload = new Workload { Name = "w", Trace = new TraceRef { Path = "a.csv" }, WindowS = 30, NumTypes = 2 },
                Slo = new Slo { TtftS = 2, TpotS = 0.2 },
                Planner = new PlannerOptions { MaxSolveSeconds = 10 },
            };
            ScenarioWorkload Load(string file) => ScenarioWorkload.Load(scenario, dir, (c, rel) => OServe.Engine.Cli.Catalog.Cluster(c, rel),
                (m, rel) => OServe.Engine.Cli.Catalog.Model(m, rel), Path.Combine(dir, file));
            var options = new VerificationOptions { MaxTpVariants = [], RhoVariants = [] };
            var k = OServe.Planner.CostModel.CostCoefficientsModule.defaults;
            var a = VerifiedScheduler.PlanSchedule(Load("a.csv"), ServingSystem.OServe, k, null, options, numWorkers: 1).Choices!;
            var b = VerifiedScheduler.PlanSchedule(Load("b.csv"), ServingSystem.OServe, k, null, options, numWorkers: 1).Choices!;
            // Windows starting at 0, 30, 60 and 90 s see only the shared past; they must score and choose alike.
            for (int w = 0; w <= 3; w++)
            {
                Assert.Equal(a[w].Chosen, b[w].Chosen);
                Assert.Equal(a[w].Scores, b[w].Scores);
            }
            Assert.True(a.Count > 4 && b.Count > 0);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
