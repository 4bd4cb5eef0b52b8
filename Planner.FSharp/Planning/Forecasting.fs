namespace OServe.Planner.Planning

open System
open System.Text
open OServe.Planner.Workload
open OServe.Planner.Forecast

type ForecastRow =
    { Type: string
      MeanInputTokens: float
      MeanOutputTokens: float
      MeanRateRps: float
      SmoothingRrmse: float
      NaiveRrmse: float
      MovingAverageRrmse: float }

type ForecastReport =
    { Rows: ForecastRow[]
      /// Pooled over types (see Forecaster.pooledRrmse).
      Overall: ForecastRow
      NumWindows: int
      Text: string }

/// `oserve forecast TRACE`: types the trace, builds per-type rate series, and reports one-step-ahead
/// RRMSE of exponential smoothing against naive (last value) and moving-average forecasts.
[<RequireQualifiedAccess>]
module Forecasting =
    /// seasonLength: windows per season for Holt-Winters; 0 for none.
    let report (trace: Trace) (windowS: float) (numTypes: int) (seasonLength: int) : Result<ForecastReport, string> =
        if windowS <= 0.0 then Error(sprintf "window must be > 0 s, got %g" windowS)
        else
            RequestTyping.fit { TypingOptions.Default with NumTypes = numTypes } trace.Requests
            |> Result.bind (fun types ->
                let series = RequestTyping.rateSeries types windowS trace.Requests
                let n = if series.Length = 0 then 0 else series[0].Length
                let opts = { ForecastOptions.Default with SeasonLength = (if seasonLength > 1 then Some seasonLength else None) }
                if n <= opts.MinHistory + 1 then
                    Error(sprintf "the trace spans %d windows of %g s; forecasting needs at least %d" n windowS (opts.MinHistory + 2))
                else
                    let eval m = series |> Array.map (Forecaster.evaluate opts m)
                    let sm, nv, ma = eval ForecastMethod.Smoothing, eval ForecastMethod.Naive, eval ForecastMethod.MovingAverage
                    let rows =
                        types |> Array.mapi (fun j t ->
                            { Type = sprintf "t%d" t.Id; MeanInputTokens = t.MeanInputTokens; MeanOutputTokens = t.MeanOutputTokens
                              MeanRateRps = Array.average series[j]
                              SmoothingRrmse = sm[j].Rrmse; NaiveRrmse = nv[j].Rrmse; MovingAverageRrmse = ma[j].Rrmse })
                    let overall =
                        { Type = "all"; MeanInputTokens = trace.Requests |> Array.averageBy (fun r -> float r.InputTokens)
                          MeanOutputTokens = trace.Requests |> Array.averageBy (fun r -> float r.OutputTokens)
                          MeanRateRps = rows |> Array.sumBy (fun r -> r.MeanRateRps)
                          SmoothingRrmse = Forecaster.pooledRrmse sm; NaiveRrmse = Forecaster.pooledRrmse nv
                          MovingAverageRrmse = Forecaster.pooledRrmse ma }
                    let sb = StringBuilder()
                    sb.AppendLine(sprintf "forecast of %s: %d requests, %d windows of %g s, one-step-ahead RRMSE" trace.Source trace.Requests.Length n windowS) |> ignore
                    sb.AppendLine(sprintf "%-5s %8s %8s %9s %10s %8s %8s" "type" "input" "output" "rate/s" "smoothing" "naive" "mov.avg") |> ignore
                    for r in Array.append rows [| overall |] do
                        sb.AppendLine(sprintf "%-5s %8.0f %8.0f %9.3f %9.1f%% %7.1f%% %7.1f%%" r.Type r.MeanInputTokens r.MeanOutputTokens r.MeanRateRps
                                          (100.0 * r.SmoothingRrmse) (100.0 * r.NaiveRrmse) (100.0 * r.MovingAverageRrmse)) |> ignore
                    Ok { Rows = rows; Overall = overall; NumWindows = n; Text = sb.ToString() })
