using OServe.Engine.Demo;
using Xunit;

namespace OServe.Engine.Tests.Demo;

public sealed class DemoWorkloadTests
{
    private static readonly DemoRequestShapes Shapes = new();
    private static readonly DemoRates Rates = new(LongRps: 3, ChatLowRps: 2, ChatPeakRps: 20);

    [Fact]
    public void The_phases_tile_the_run_long_then_a_chat_ramp_up_burst_and_down_then_long_again()
    {
        var phases = DemoWorkload.PhasesOf(Rates, 100);
        Assert.Equal(0, phases[0].FromS);
        Assert.Equal(100, phases[^1].ToS);
        for (int i = 1; i < phases.Count; i++) Assert.Equal(phases[i - 1].ToS, phases[i].FromS);
        Assert.Equal([DemoWorkload.Long, DemoWorkload.Chat, DemoWorkload.Chat, DemoWorkload.Chat, DemoWorkload.Long], phases.Select(p => p.Type));
        // The chats climb to the burst and come back down: a forecaster can follow them.
        Assert.Equal((2.0, 20.0), (phases[1].RateFromRps, phases[1].RateToRps));
        Assert.Equal((20.0, 20.0), (phases[2].RateFromRps, phases[2].RateToRps));
        Assert.Equal((20.0, 2.0), (phases[3].RateFromRps, phases[3].RateToRps));
        Assert.Equal(11.0, phases[1].RateAt((phases[1].FromS + phases[1].ToS) / 2), 9);
    }

    [Fact]
    public void Arrivals_follow_each_phases_rate_and_type()
    {
        var w = DemoWorkload.Build(Shapes, Rates, 200, 1, seed: 3);
        var counts = w.CountPerPhase();
        for (int i = 0; i < w.Phases.Count; i++)
        {
            double expected = w.Phases[i].ExpectedRequests;
            // Poisson counts: within 4 standard deviations of the mean.
            Assert.InRange(counts[i], expected - 4 * Math.Sqrt(expected), expected + 4 * Math.Sqrt(expected));
        }
        Assert.Equal(w.Trace.Requests.Length, counts.Sum());
        foreach (var r in w.Trace.Requests)
        {
            var phase = w.Phases.First(p => r.Arrival < p.ToS);
            var (input, output) = phase.Type == DemoWorkload.Chat ? (Shapes.ChatInput, Shapes.ChatOutput) : (Shapes.LongInput, Shapes.LongOutput);
            Assert.InRange(r.InputTokens, input * (1 - Shapes.Jitter) - 1, input * (1 + Shapes.Jitter) + 1);
            Assert.InRange(r.OutputTokens, Math.Max(1, output * (1 - Shapes.Jitter) - 1), output * (1 + Shapes.Jitter) + 1);
        }
        Assert.True(w.Trace.Requests.Zip(w.Trace.Requests.Skip(1)).All(p => p.First.Arrival <= p.Second.Arrival), "arrivals are in time order");
    }

    [Fact]
    public void The_plan_types_are_chat_and_long_with_the_first_windows_rates()
    {
        var w = DemoWorkload.Build(Shapes, Rates, 20, 2, seed: 3);
        Assert.Equal([DemoWorkload.Chat, DemoWorkload.Long], w.Types.Select(t => t.Name));
        Assert.Equal(Shapes.LongInput, w.Types[1].InputTokens);
        Assert.Equal(3, w.Types[1].RateRps, 6); // the first window is all long prompts
        Assert.Equal(0.02, w.Types[0].RateRps, 6); // no chats yet: the floor that keeps a route
    }

    [Fact]
    public void Every_phase_holds_a_request_even_at_rates_too_low_to_draw_one()
    {
        var w = DemoWorkload.Build(Shapes, new DemoRates(0.001, 0.001, 0.002), 3, 0.5, seed: 1);
        Assert.All(w.CountPerPhase(), n => Assert.True(n >= 1));
        Assert.Equal(DemoWorkload.Long, w.Phases.First(p => w.Trace.Requests[0].Arrival < p.ToS).Type);
    }

    [Fact]
    public void The_same_seed_gives_the_same_trace()
    {
        var a = DemoWorkload.Build(Shapes, Rates, 30, 1, seed: 5);
        var b = DemoWorkload.Build(Shapes, Rates, 30, 1, seed: 5);
        Assert.Equal(a.Trace.Requests, b.Trace.Requests);
    }

    [Fact]
    public void Rates_come_from_what_calibration_measured()
    {
        var rates = DemoRates.For(new ShapeFigures(DemoShapes.Tp2, 0.2, 0.1, 10, 12), new ShapeFigures(DemoShapes.TwoTp1, 0.3, 0.2, 14, 24));
        Assert.Equal(Math.Sqrt(12 * 24), rates.ChatPeakRps, 9); // beyond where 1 x tp2 saturates, below what 2 x tp1 serves
        // Over HTTP where measured: 1 x tp2 lost more to the server's work than 2 x tp1.
        var overHttp = DemoRates.For(new ShapeFigures(DemoShapes.Tp2, 0.2, 0.1, 10, 12) { MeasuredHttpRps = 8 },
            new ShapeFigures(DemoShapes.TwoTp1, 0.3, 0.2, 14, 24) { MeasuredHttpRps = 18 });
        Assert.Equal(12, overHttp.ChatPeakRps, 9);
        var weak = DemoRates.For(new ShapeFigures(DemoShapes.Tp2, 0.2, 0.1, 10, 12), new ShapeFigures(DemoShapes.TwoTp1, 0.3, 0.2, 14, 13));
        Assert.Equal(DemoRates.PeakShare * 13, weak.ChatPeakRps, 9); // never beyond what 2 x tp1 keeps up with
        Assert.Equal(DemoRates.LowShare * rates.ChatPeakRps, rates.ChatLowRps, 9);
        Assert.Equal(DemoRates.LongUtilization / 0.1, rates.LongRps, 9); // the faster deployment's TTFT
        Assert.Throws<ArgumentException>(() => DemoRates.For(new ShapeFigures(DemoShapes.Tp2, 0, double.NaN, 0, 0), new ShapeFigures(DemoShapes.TwoTp1, 0, 0, 0, 0)));
    }

    /// <summary>
    /// With rates sized from figures like this machine's (1 x tp2: 250 ms on a long prompt, 130
    /// chats/s; 2 x tp1: 450 ms, 190 chats/s), long prompts are over 1.5% of the default replay's
    /// requests: a static deployment that serves them slowly shows it in its P99, which would
    /// otherwise be the chats' alone (with the phases used until late 2026-12-05 they were 1.1-1.4%).
    /// </summary>
    [Fact]
    public void Long_prompts_are_more_than_one_percent_of_the_requests()
    {
        var rates = DemoRates.For(new ShapeFigures(DemoShapes.Tp2, 0.25, 0.25, 130, 130), new ShapeFigures(DemoShapes.TwoTp1, 0.5, 0.45, 190, 190));
        var phases = DemoWorkload.PhasesOf(rates, new DemoOptions().DurationS);
        double expectedLong = phases.Where(p => p.Type == DemoWorkload.Long).Sum(p => p.ExpectedRequests);
        double share = expectedLong / phases.Sum(p => p.ExpectedRequests);
        Assert.InRange(share, 0.015, 0.05);
    }

    [Fact]
    public void Lengths_that_do_not_fit_the_model_are_refused_with_the_numbers()
    {
        var e = Assert.Throws<ArgumentException>(() => (Shapes with { LongInput = 1200 }).Validate(1280));
        Assert.Contains("1200", e.Message);
        Assert.Contains("1280", e.Message);
        Assert.Throws<ArgumentException>(() => DemoWorkload.Build(Shapes, Rates with { LongRps = 0 }, 10, 1, 1));
    }
}
