using Microsoft.FSharp.Core;
using OServe.Planner.Forecast;

namespace OServe.Engine.Control;

/// <summary>Next window's arrival rate of one request type from its history of per-window rates.</summary>
public interface IRateForecaster
{
    double Next(IReadOnlyList<double> history);
}

/// <summary>
/// The planner's forecaster: Holt's exponential smoothing fitted to the history (the last value on
/// fewer than three points). With <paramref name="leadWindows"/> above 1 it gives the highest of the
/// next that many windows' forecasts: a switch takes time, so a deployment chosen now must still
/// serve the load of the windows until it is in place (a rising trend is met before it arrives; a
/// falling one changes nothing, its nearest forecast being the highest).
/// </summary>
public sealed class SmoothingRateForecaster(int? seasonLength = null, int leadWindows = 1) : IRateForecaster
{
    private readonly ForecastOptions _options = new(
        seasonLength is > 1 ? FSharpOption<int>.Some(seasonLength.Value) : FSharpOption<int>.None,
        ForecastOptions.Default.MovingAverageWindow, ForecastOptions.Default.MinHistory, ForecastOptions.Default.WindowSec,
        ForecastOptions.Default.ValidationWindows, ForecastOptions.Default.MaxHistory);

    public double Next(IReadOnlyList<double> history)
    {
        if (leadWindows <= 1 || history.Count < 3) return Forecaster.next(_options, ForecastMethod.Smoothing, history.ToArray());
        var fit = ExponentialSmoothing.fit(_options.SeasonLength, history.ToArray());
        return Enumerable.Range(1, leadWindows).Max(h => fit.Forecast(h));
    }
}
