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
      /// Mean requests per window over the evaluated windows.
      MeanCount: float
      /// The Poisson noise floor of RRMSE at this rate and window (Forecaster.poissonFloor).
      PoissonFloor: float
      /// Forecaster.dispersion of the series (1: Poisson counts at a steady rate).
      Dispersion: float
      /// The automatic method (rolling-origin choice among the models), what the planner uses.
      AutoRrmse: float
      /// The pair of models Auto averaged most often, e.g. "holt+poisson-level".
      AutoModel: string
      SmoothingRrmse: float
      NaiveRrmse: float
      MovingAverageRrmse: float }

    member r.TimesFloor = r.AutoRrmse / r.PoissonFloor
    /// What the best forecaster of a random-walk rate with this dispersion reaches, in floors.
    member r.RandomWalkTimesFloor = Forecaster.randomWalkRatio r.Dispersion

type ForecastReport =
    { Rows: ForecastRow[]
      /// Pooled over types (see Forecaster.pooledRrmse).
      Overall: ForecastRow
      NumWindows: int
      Text: string }

/// `oserve forecast TRACE`: types the trace, builds per-type rate series, and reports one-step-ahead
/// RRMSE of the planner's forecaster (Auto) next to the Poisson noise floor of each type's rate and
/// window, with Holt smoothing, naive (last value) and moving-average forecasts for comparison.
[<RequireQualifiedAccess>]
module Forecasting =
    /// seasonLength: windows per season for Holt-Winters; 0: detected from the history.
    let report (trace: Trace) (windowS: float) (numTypes: int) (seasonLength: int) : Result<ForecastReport, string> =
        if windowS <= 0.0 then Error(sprintf "window must be > 0 s, got %g" windowS)
        else
            RequestTyping.fit { TypingOptions.Default with NumTypes = numTypes } trace.Requests
            |> Result.bind (fun types ->
                let series = RequestTyping.rateSeries types windowS trace.Requests
                let n = if series.Length = 0 then 0 else series[0].Length
                let opts = { ForecastOptions.Default with SeasonLength = (if seasonLength > 1 then Some seasonLength else None); WindowSec = windowS }
                if n <= opts.MinHistory + 1 then
                    Error(sprintf "the trace spans %d windows of %g s; forecasting needs at least %d" n windowS (opts.MinHistory + 2))
                else
                    let eval m = series |> Array.map (Forecaster.evaluate opts m)
                    let sm, nv, ma = eval ForecastMethod.Smoothing, eval ForecastMethod.Naive, eval ForecastMethod.MovingAverage
                    let start = max 2 opts.MinHistory
                    // Auto, as Forecaster.next computes it, keeping which two models each forecast averaged.
                    let autoWithPairs =
                        series |> Array.map (fun y ->
                            let steps = [| start .. y.Length - 1 |] |> Array.map (fun t -> Forecaster.nextAuto opts y[0 .. t - 1])
                            let forecasts, pairs = Array.map fst steps, Array.map snd steps
                            let actuals = y[start ..]
                            { Method = ForecastMethod.Auto; Forecasts = forecasts; Actuals = actuals; Rrmse = Forecaster.rrmse forecasts actuals },
                            pairs |> Array.map (List.map ForecastModel.name >> String.concat "+") |> Array.countBy id |> Array.maxBy snd |> fst)
                    let auto = Array.map fst autoWithPairs
                    let chosen j = snd autoWithPairs[j]
                    let row name input output (y: float[] option) (e: ForecastEvaluation[]) (model: string) =
                        let actuals = e |> Array.collect (fun x -> x.Actuals)
                        { Type = name; MeanInputTokens = input; MeanOutputTokens = output
                          MeanRateRps = (match y with Some y -> Array.average y | None -> series |> Array.sumBy Array.average)
                          MeanCount = Array.average actuals * windowS
                          PoissonFloor = Forecaster.poissonFloor windowS actuals
                          Dispersion = (match y with Some y -> Forecaster.dispersion windowS y | None -> nan)
                          AutoRrmse = Forecaster.pooledRrmse e
                          AutoModel = model
                          SmoothingRrmse = nan; NaiveRrmse = nan; MovingAverageRrmse = nan }
                    let rows =
                        types |> Array.mapi (fun j t ->
                            { row (sprintf "t%d" t.Id) t.MeanInputTokens t.MeanOutputTokens (Some series[j]) [| auto[j] |] (chosen j) with
                                SmoothingRrmse = sm[j].Rrmse; NaiveRrmse = nv[j].Rrmse; MovingAverageRrmse = ma[j].Rrmse })
                    let overall =
                        { row "all" (trace.Requests |> Array.averageBy (fun r -> float r.InputTokens)) (trace.Requests |> Array.averageBy (fun r -> float r.OutputTokens))
                              None auto "" with
                            SmoothingRrmse = Forecaster.pooledRrmse sm; NaiveRrmse = Forecaster.pooledRrmse nv; MovingAverageRrmse = Forecaster.pooledRrmse ma }
                    let sb = StringBuilder()
                    let line (t: string) = sb.AppendLine t |> ignore
                    line (sprintf "forecast of %s: %d requests, %d windows of %g s, one-step-ahead RRMSE (forecasts from window %d on)" trace.Source trace.Requests.Length n windowS start)
                    line (sprintf "%-5s %7s %7s %8s %7s %7s %6s %6s %7s %7s %-18s %7s %7s %7s" "type" "input" "output" "rate/s" "n/win" "floor" "disp" "rw x" "auto" "x floor" "auto model" "holt" "naive" "mov.avg")
                    for r in Array.append rows [| overall |] do
                        let disp = if Double.IsNaN r.Dispersion then "-" else sprintf "%.1f" r.Dispersion
                        let rw = if Double.IsNaN r.Dispersion then "-" else sprintf "%.2f" r.RandomWalkTimesFloor
                        line (sprintf "%-5s %7.0f %7.0f %8.3f %7.1f %6.1f%% %6s %6s %6.1f%% %7.2f %-18s %6.1f%% %6.1f%% %6.1f%%" r.Type r.MeanInputTokens r.MeanOutputTokens r.MeanRateRps r.MeanCount
                                  (100.0 * r.PoissonFloor) disp rw (100.0 * r.AutoRrmse) r.TimesFloor r.AutoModel (100.0 * r.SmoothingRrmse) (100.0 * r.NaiveRrmse) (100.0 * r.MovingAverageRrmse))
                    line "floor: the RRMSE Poisson counting noise alone leaves, 1 / sqrt(requests per window); disp: Var(count change) / (2 mean count), 1 for Poisson counts at a steady rate (above 1 the rate itself moves)"
                    line "rw x: what the best forecaster reaches, in floors, if the rate moved as a random walk with that dispersion (a reference: bursts that return can be forecast better)"
                    line "auto (the planner's forecaster): each window the mean of the two models (Holt, Poisson level, log level, moving averages, mean, naive) whose one-step forecasts over the last 20 windows erred least; auto model: the pair used most"
                    Ok { Rows = rows; Overall = overall; NumWindows = n; Text = sb.ToString() })
