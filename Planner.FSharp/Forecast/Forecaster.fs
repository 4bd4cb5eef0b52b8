namespace OServe.Planner.Forecast

open System

type ForecastMethod =
    | Smoothing = 0
    | Naive = 1
    | MovingAverage = 2

type ForecastOptions =
    { SeasonLength: int option
      MovingAverageWindow: int
      /// The first forecast is made with this many points of history.
      MinHistory: int }

    static member Default = { SeasonLength = None; MovingAverageWindow = 5; MinHistory = 5 }

/// One-step-ahead forecasts over a series and their errors.
type ForecastEvaluation =
    { Method: ForecastMethod
      Forecasts: float[]
      Actuals: float[]
      Rrmse: float }

[<RequireQualifiedAccess>]
module Forecaster =
    /// Relative root mean squared error: RRMSE = sqrt(mean_t (f_t - a_t)^2) / mean_t a_t, over the
    /// evaluated points t. Returns NaN when there is no point or the actuals average to 0.
    let rrmse (forecasts: float[]) (actuals: float[]) : float =
        if forecasts.Length = 0 || forecasts.Length <> actuals.Length then nan
        else
            let mse = Array.map2 (fun f a -> (f - a) * (f - a)) forecasts actuals |> Array.average
            let mean = Array.average actuals
            if mean <= 0.0 then nan else sqrt mse / mean

    /// The next value after `history` by the given method.
    let next (options: ForecastOptions) (m: ForecastMethod) (history: float[]) : float =
        if history.Length = 0 then 0.0
        else
            match m with
            | ForecastMethod.Naive -> history[history.Length - 1]
            | ForecastMethod.MovingAverage ->
                let w = min options.MovingAverageWindow history.Length
                Array.averageBy id history[history.Length - w ..]
            // Fewer than three points give no one-step error to fit on: last value.
            | _ when history.Length < 3 -> history[history.Length - 1]
            | _ -> (ExponentialSmoothing.fit options.SeasonLength history).Forecast 1

    /// Rolling one-step-ahead evaluation: for t >= MinHistory the model is refit on y[0..t-1] and
    /// forecasts y[t] (what an online controller does every window).
    let evaluate (options: ForecastOptions) (m: ForecastMethod) (y: float[]) : ForecastEvaluation =
        let start = max 2 options.MinHistory
        let idx = [| start .. y.Length - 1 |]
        let forecasts = idx |> Array.map (fun t -> next options m y[0 .. t - 1])
        let actuals = idx |> Array.map (fun t -> y[t])
        { Method = m; Forecasts = forecasts; Actuals = actuals; Rrmse = rrmse forecasts actuals }

    /// Pooled RRMSE over several series (per type): sqrt(mean of all squared errors) / mean of all
    /// actuals, so busy types weigh more than quiet ones.
    let pooledRrmse (evaluations: ForecastEvaluation seq) : float =
        let evs = Seq.toArray evaluations
        rrmse (evs |> Array.collect (fun e -> e.Forecasts)) (evs |> Array.collect (fun e -> e.Actuals))
