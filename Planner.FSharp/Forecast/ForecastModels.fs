namespace OServe.Planner.Forecast

open System

/// The forecasters the automatic method chooses among, each one step ahead from a history of
/// per-window rates (requests/s).
type ForecastModel =
    /// Holt's smoothing with a damped trend (simple smoothing when beta = 0), fitted on the history;
    /// Holt-Winters when a season is given or detected and it fits better.
    | Smoothing
    /// A local level under Poisson noise: simple smoothing whose gain is not fitted but follows
    /// from how much the rate moves between windows beyond the Poisson noise of counting (the
    /// Kalman gain of a random-walk rate observed through Poisson counts).
    | PoissonLevel
    /// Simple smoothing of log(count + 1), back-transformed with the mean of exp(residual)
    /// (smearing): for bursty rates, whose jumps are closer to multiplicative.
    | LogLevel
    | MovingAverage of windows: int
    /// The mean of the whole (capped) history.
    | Mean
    | Naive

[<RequireQualifiedAccess>]
module ForecastModel =
    let name (m: ForecastModel) =
        match m with
        | Smoothing -> "holt"
        | PoissonLevel -> "poisson-level"
        | LogLevel -> "log-level"
        | MovingAverage k -> sprintf "ma%d" k
        | Mean -> "mean"
        | Naive -> "naive"

    /// The candidates of the automatic method, in the order ties are broken.
    let candidates = [ Smoothing; PoissonLevel; LogLevel; MovingAverage 5; MovingAverage 10; Mean; Naive ]

    /// Windows per season with a clear autocorrelation peak (at least three seasons in the
    /// history, correlation above 0.3 and above 2.5 / sqrt(n)), else None.
    let detectSeason (y: float[]) : int option =
        let n = y.Length
        if n < 12 then None
        else
            let mean = Array.average y
            let d = y |> Array.map (fun v -> v - mean)
            let var = d |> Array.sumBy (fun v -> v * v)
            if var <= 0.0 then None
            else
                let acf lag = (Array.init (n - lag) (fun t -> d[t] * d[t + lag]) |> Array.sum) / var
                let threshold = max 0.3 (2.5 / sqrt (float n))
                [ 2 .. n / 3 ]
                |> List.map (fun m -> m, acf m)
                |> List.filter (fun (m, r) -> r > threshold && r >= acf (m - 1) && (m + 1 > n / 3 || r >= acf (m + 1)))
                |> List.sortByDescending snd
                |> List.tryHead
                |> Option.map fst

    let private simpleLevel (alpha: float) (y: float[]) =
        let mutable level = y[0]
        let residuals = Array.zeroCreate (y.Length - 1)
        for t in 1 .. y.Length - 1 do
            residuals[t - 1] <- y[t] - level
            level <- level + alpha * residuals[t - 1]
        level, residuals

    /// Steady-state gain of a local level observed with noise variance `noise` whose level moves
    /// with variance `signal` per step: (-q + sqrt(q^2 + 4q)) / 2 with q = signal / noise.
    let kalmanGain (signal: float) (noise: float) =
        if noise <= 0.0 then 1.0
        elif signal <= 0.0 then 0.02
        else
            let q = signal / noise
            min 1.0 (max 0.02 ((-q + sqrt (q * q + 4.0 * q)) / 2.0))

    /// The one-step forecast of `model` after `y` (at least one point). `windowSec` converts rates to
    /// counts for the Poisson and log models; `season` is Holt-Winters' season, if any.
    let forecast (model: ForecastModel) (windowSec: float) (season: int option) (y: float[]) : float =
        let last = y[y.Length - 1]
        if y.Length < 3 then last
        else
            match model with
            | Naive -> last
            | MovingAverage k -> Array.average y[max 0 (y.Length - k) ..]
            | Mean -> Array.average y
            | Smoothing -> (ExponentialSmoothing.fit season y).Forecast 1
            | PoissonLevel ->
                // A count's variance is its mean: the rate's noise variance is mean / W. What the
                // differences vary by beyond twice that is the level's own movement.
                let noise = Array.average y / windowSec
                let steps = Array.init (y.Length - 1) (fun t -> y[t + 1] - y[t])
                let signal = (steps |> Array.averageBy (fun d -> d * d)) - 2.0 * noise
                max 0.0 (fst (simpleLevel (kalmanGain signal noise) y))
            | LogLevel ->
                let z = y |> Array.map (fun v -> log (max 0.0 v * windowSec + 1.0))
                let sse alpha = snd (simpleLevel alpha z) |> Array.sumBy (fun e -> e * e)
                let alpha = [| 0.05 .. 0.05 .. 1.0 |] |> Array.minBy sse
                let level, residuals = simpleLevel alpha z
                let smear = residuals |> Array.averageBy exp
                max 0.0 ((exp level * smear - 1.0) / windowSec)
