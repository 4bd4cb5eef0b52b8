using OServe.Engine.Control;
using Xunit;

namespace OServe.Engine.Tests.Control;

/// <summary>Planning for the load when a switch would be in place: the highest forecast over the lead windows.</summary>
public sealed class ForecastLeadTests
{
    [Fact]
    public void A_rising_rate_is_planned_for_at_its_value_lead_windows_ahead()
    {
        double[] rising = [0, 10, 20, 30, 40];
        double next = new SmoothingRateForecaster().Next(rising);
        double ahead = new SmoothingRateForecaster(leadWindows: 2).Next(rising);
        Assert.InRange(next, 45, 55);
        Assert.InRange(ahead, 55, 65);
    }

    [Fact]
    public void A_falling_rate_is_planned_for_at_its_next_window_value()
    {
        double[] falling = [40, 30, 20, 10];
        Assert.Equal(new SmoothingRateForecaster().Next(falling), new SmoothingRateForecaster(leadWindows: 3).Next(falling), 9);
    }

    [Fact]
    public void Short_histories_and_a_lead_of_one_are_the_plain_forecast()
    {
        Assert.Equal(7.0, new SmoothingRateForecaster(leadWindows: 2).Next([3.0, 7.0]));
        double[] noisy = [5, 9, 4, 8, 6, 7];
        Assert.Equal(new SmoothingRateForecaster().Next(noisy), new SmoothingRateForecaster(leadWindows: 1).Next(noisy));
    }

    [Fact]
    public void A_lead_below_one_window_is_refused_by_the_controller_options()
    {
        var e = Assert.Throws<ArgumentException>(() => ControllerOptionsFor(0).Validate());
        Assert.Contains("forecast lead", e.Message);
    }

    private static ControllerOptions ControllerOptionsFor(int lead) => new()
    {
        Cluster = new OServe.Contracts.Cluster
        {
            Name = "one-gpu",
            GpuTypes = [new OServe.Contracts.GpuType { Name = "H100-80GB", MemoryGib = 80, Tflops = 989, HbmGbps = 3350 }],
            Nodes = [new OServe.Contracts.Node { Name = "node0", GpuType = "H100-80GB", Gpus = 1, IntraLinkGbps = 400 }],
            InterNodeLinkGbps = 400,
            StorageReadGbps = 2,
        },
        Model = new OServe.Contracts.ModelCard
        {
            Name = "Llama-2-7B", Layers = 32, Hidden = 4096, Intermediate = 11008, Heads = 32, KvHeads = 32, Vocab = 32000, MaxContext = 4096,
        },
        Coefficients = OServe.Planner.CostModel.CostCoefficientsModule.defaults,
        ForecastLeadWindows = lead,
    };
}
