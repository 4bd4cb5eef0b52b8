using Microsoft.FSharp.Core;
using OServe.Planner.Forecast;

namespace OServe.Engine.Control;

/// <summary>Next window's arrival rate of one request type from its history of per-window rates.</summary>
public interface IRateForecaster
{
    double Next(IReadOnlyList<double> history);
}

/// <summary>The planner's forecaster: Holt's exponential smoothing fitted to the history (naive on one point).</summary>
public sealed class SmoothingRateForecaster(int? seasonLength = null) : IRateForecaster
{
    private readonly ForecastOptions _options = new(
        seasonLength is > 1 ? FSharpOption<int>.Some(seasonLength.Value) : FSharpOption<int>.None,
        ForecastOptions.Default.MovingAverageWindow, ForecastOptions.Default.MinHistory, ForecastOptions.Default.WindowSec,
        ForecastOptions.Default.ValidationWindows, ForecastOptions.Default.MaxHistory);

    public double Next(IReadOnlyList<double> history) => Forecaster.next(_options, ForecastMethod.Smoothing, history.ToArray());
}
