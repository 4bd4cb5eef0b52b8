namespace OServe.Planner.Forecast

open System

type ForecastMethod =
    /// Holt's damped-trend smoothing (Holt-Winters with SeasonLength), fitted on the history.
    | Smoothing = 0
    | Naive = 1
    | MovingAverage = 2
    /// Each forecast the mean of the two candidates (ForecastModel.candidates) whose own one-step
    /// forecasts over the last ValidationWindows of the history, each made from the data before
    /// it, erred least.
    | Auto = 3

type ForecastOptions =
    { /// Holt-Winters' season in windows; None: Auto looks for one (ForecastModel.detectSeason).
      SeasonLength: int option
      MovingAverageWindow: int
      /// The first forecast is made with this many points of history.
      MinHistory: int
      /// Seconds per window: turns rates into counts for the Poisson noise (floor, Poisson level).
      WindowSec: float
      /// Auto: one-step forecasts over this many recent windows choose the model.
      ValidationWindows: int
      /// Auto: models are fitted on at most this many recent windows (bounds the cost on long traces).
      MaxHistory: int }

    static member Default =
        { SeasonLength = None; MovingAverageWindow = 5; MinHistory = 5; WindowSec = 60.0; ValidationWindows = 20; MaxHistory = 240 }

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

    /// Auto's ranking for the window after `history`: rolling-origin validation, i.e. every
    /// candidate forecasts each of the last ValidationWindows points from the points before it
    /// (refitted at every origin, as it would have been live), least squared error first (ties:
    /// candidate order). Deterministic: no sampling anywhere.
    let rank (options: ForecastOptions) (history: float[]) : ForecastModel list * int option =
        let y = history[max 0 (history.Length - options.MaxHistory) ..]
        let season = options.SeasonLength |> Option.orElse (ForecastModel.detectSeason y)
        let burn = 3
        if y.Length < burn + 2 then [ Naive ], season
        else
            let first = max burn (y.Length - options.ValidationWindows)
            let error (m: ForecastModel) =
                [ first .. y.Length - 1 ] |> List.sumBy (fun o ->
                    let e = ForecastModel.forecast m options.WindowSec season y[0 .. o - 1] - y[o]
                    e * e)
            ForecastModel.candidates |> List.sortBy error, season

    /// Auto's best model (the first of `rank`).
    let choose (options: ForecastOptions) (history: float[]) : ForecastModel * int option =
        let ranked, season = rank options history
        List.head ranked, season

    /// Auto's forecast after `history` (at least one point) and the two models it averaged. The mean
    /// of the two best: on the Azure traces at 60 s it erred less than the best alone (pooled
    /// 24.7% vs 24.9% on conv, 109.9% vs 111.5% on code), whose pick is noisy over 20 windows.
    let nextAuto (options: ForecastOptions) (history: float[]) : float * ForecastModel list =
        if history.Length < 3 then history[history.Length - 1], [ Naive ]
        else
            let ranked, season = rank options history
            let y = history[max 0 (history.Length - options.MaxHistory) ..]
            let best = ranked |> List.truncate 2
            best |> List.averageBy (fun m -> ForecastModel.forecast m options.WindowSec season y), best

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
            | ForecastMethod.Auto -> fst (nextAuto options history)
            | _ -> (ExponentialSmoothing.fit options.SeasonLength history).Forecast 1

    /// The Poisson noise floor of RRMSE for rates observed over `windowSec`-second windows.
    /// Derivation: let a_t = N_t / W be the observed rate of window t, N_t ~ Poisson(lambda_t W).
    /// A forecast f_t made from earlier windows is independent of this window's counting noise, so
    /// E[(f_t - a_t)^2] = E[(f_t - lambda_t)^2] + Var(a_t) >= Var(a_t) = lambda_t / W: even a
    /// forecaster that knew lambda_t exactly keeps an expected squared error of lambda_t / W. With
    /// RRMSE = sqrt(mean_t (f_t - a_t)^2) / mean_t a_t (rrmse above) and mean_t a_t ~ mean_t lambda_t,
    /// the floor is sqrt(mean_t lambda_t / W) / mean_t lambda_t = 1 / sqrt(W * mean_t a_t) =
    /// 1 / sqrt(mu), mu the mean count per window (0.1 at 100 requests a window, 0.2 at 25).
    /// NaN without a positive mean.
    let poissonFloor (windowSec: float) (actuals: float[]) : float =
        if actuals.Length = 0 then nan
        else
            let mean = Array.average actuals
            if mean <= 0.0 || windowSec <= 0.0 then nan else 1.0 / sqrt (windowSec * mean)

    /// How far counts stray from Poisson at a steady rate: Var(N_t - N_(t-1)) / (2 mean N), with
    /// N_t = a_t W. It is 1 for Poisson counts of a constant rate (the difference of two independent
    /// Poisson(mu) has variance 2 mu); above 1 the rate itself moves from window to window, and what
    /// it moves by unpredictably is error no forecaster from past counts removes.
    let dispersion (windowSec: float) (y: float[]) : float =
        if y.Length < 2 then nan
        else
            let mean = Array.average y * windowSec
            if mean <= 0.0 then nan
            else (Array.init (y.Length - 1) (fun t -> (y[t + 1] - y[t]) * windowSec) |> Array.averageBy (fun d -> d * d)) / (2.0 * mean)

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

    /// The RRMSE, in multiples of the Poisson floor, of the best forecaster for a rate that moves as
    /// a random walk with this dispersion (a reference, not a bound: a rate that returns to its
    /// level, like on/off bursts, can be forecast better). In counts per window, with mean mu:
    /// Var(N_t - N_(t-1)) = 2 mu D = s2 + 2 mu, so the walk's step variance is s2 = 2 mu (D - 1); the
    /// Kalman filter's steady prior variance is P = (s2 + sqrt(s2^2 + 4 s2 mu)) / 2 and its one-step
    /// squared error P + mu, i.e. sqrt(1 + P / mu) times the floor sqrt(mu) / mu.
    let randomWalkRatio (dispersion: float) : float =
        if Double.IsNaN dispersion then nan
        else
            let s = 2.0 * max 0.0 (dispersion - 1.0)
            sqrt (1.0 + (s + sqrt (s * s + 4.0 * s)) / 2.0)
