namespace OServe.Planner.Forecast

open System

/// A fitted smoothing model. Holt: level + trend damped by phi (phi = 1: Holt's linear method,
/// beta = 0: simple exponential smoothing). HoltWinters: additive season of SeasonLength.
type SmoothingModel =
    | Holt of alpha: float * beta: float * phi: float
    | HoltWinters of alpha: float * beta: float * gamma: float * seasonLength: int

/// The state after running a model over a history; Forecast h is the h-step-ahead value (h >= 1).
type SmoothingState =
    { Model: SmoothingModel
      Level: float
      Trend: float
      Season: float[] // last SeasonLength seasonal terms, oldest first; empty for Holt
      /// Trend damping phi in (0, 1]; the h-step trend is (phi + ... + phi^h) * Trend.
      Damping: float
      OneStepSse: float
      NumFitted: int }

    member this.Forecast(h: int) =
        let s = if this.Season.Length = 0 then 0.0 else this.Season[(h - 1) % this.Season.Length]
        let phi = this.Damping
        let steps = if phi >= 1.0 then float h else phi * (1.0 - phi ** float h) / (1.0 - phi)
        max 0.0 (this.Level + steps * this.Trend + s)

[<RequireQualifiedAccess>]
module ExponentialSmoothing =
    /// Runs Holt's method with trend damping phi (Gardner); SSE of one-step forecasts from t = 2
    /// (the first two values set level and trend). beta = 0 gives simple exponential smoothing.
    let runHolt (alpha: float) (beta: float) (phi: float) (y: float[]) : SmoothingState =
        let empty level = { Model = Holt(alpha, beta, phi); Level = level; Trend = 0.0; Season = [||]; Damping = phi; OneStepSse = 0.0; NumFitted = 0 }
        if y.Length = 0 then empty 0.0
        elif y.Length = 1 then empty y[0]
        else
            let mutable l = y[0]
            // beta = 0 is simple exponential smoothing (no trend), not a trend frozen at the
            // noisy first difference.
            let mutable b = if beta = 0.0 then 0.0 else y[1] - y[0]
            let mutable sse = 0.0
            for t in 1 .. y.Length - 1 do
                let f = l + phi * b
                if t >= 2 then sse <- sse + (y[t] - f) * (y[t] - f)
                let l' = alpha * y[t] + (1.0 - alpha) * (l + phi * b)
                b <- beta * (l' - l) + (1.0 - beta) * phi * b
                l <- l'
            { Model = Holt(alpha, beta, phi); Level = l; Trend = b; Season = [||]; Damping = phi; OneStepSse = sse; NumFitted = max 0 (y.Length - 2) }

    /// Runs additive Holt-Winters; needs y.Length >= 2 * m. Initial level = mean of season 1, trend =
    /// (mean of season 2 - mean of season 1) / m, seasonal terms = season 1 minus its mean.
    let runHoltWinters (alpha: float) (beta: float) (gamma: float) (m: int) (y: float[]) : SmoothingState =
        let mean1 = Array.averageBy id y[0 .. m - 1]
        let mean2 = Array.averageBy id y[m .. 2 * m - 1]
        let mutable l = mean1
        let mutable b = (mean2 - mean1) / float m
        let s = Array.init m (fun i -> y[i] - mean1)
        // Season terms are indexed by t % m; the first season only initialises them.
        let mutable sse = 0.0
        for t in m .. y.Length - 1 do
            let si = t % m
            let f = l + b + s[si]
            sse <- sse + (y[t] - f) * (y[t] - f)
            let l' = alpha * (y[t] - s[si]) + (1.0 - alpha) * (l + b)
            b <- beta * (l' - l) + (1.0 - beta) * b
            s[si] <- gamma * (y[t] - l') + (1.0 - gamma) * s[si]
            l <- l'
        let n = y.Length
        let ordered = Array.init m (fun h -> s[(n + h) % m])
        { Model = HoltWinters(alpha, beta, gamma, m); Level = l; Trend = b; Season = ordered; Damping = 1.0; OneStepSse = sse; NumFitted = n - m }

    /// alpha (dimension 0) stays >= 0.01 so the level always learns; beta = 0 (no trend) and
    /// gamma = 0 (fixed season) are on the grid because they fit noisy rate series better than any
    /// small positive value.
    let private lowest (dim: int) = if dim = 0 then 0.01 else 0.0

    let private grid (dim: int) = Array.append (if dim = 0 then [||] else [| 0.0 |]) [| 0.05 .. 0.1 .. 0.95 |]

    /// Grid search then a finer grid (step 0.02) around the best point. Ties keep the centre (every
    /// parameter 0.5): a history whose one-step errors do not depend on the parameters (a type quiet
    /// for every window but the last, or constant until it) says nothing about them, and the first
    /// grid point (alpha 0.05) would then learn only 5% of a new level - a burst after a quiet
    /// stretch was forecast at a twentieth of what was observed.
    let private refine (dims: int) (score: float[] -> float) : float[] =
        let mutable best = Array.create dims 0.5
        let mutable bestScore = score best
        let rec search (prefix: float list) (values: int -> float[]) =
            if prefix.Length = dims then
                let p = prefix |> List.rev |> Array.ofList
                let s = score p
                if s < bestScore then
                    bestScore <- s
                    best <- p
            else
                for v in values prefix.Length do search (v :: prefix) values
        search [] grid
        let centre = Array.copy best
        let fine i = [| for d in -0.08 .. 0.02 .. 0.081 -> min 0.99 (max (lowest i) (centre[i] + d)) |] |> Array.distinct
        search [] fine
        best

    /// Fits by minimizing the one-step squared error on the history. Holt-Winters is used when the
    /// history holds at least two full seasons of `seasonLength` (> 1) and it fits better per point;
    /// otherwise Holt.
    let fit (seasonLength: int option) (y: float[]) : SmoothingState =
        // Damped trends forecast noisy rate series better than a trend that runs on forever; the
        // undamped one still wins on a clean trend (its one-step error is then 0).
        let holt =
            [ 0.8; 0.9; 0.98; 1.0 ]
            |> List.map (fun phi ->
                let p = refine 2 (fun p -> (runHolt p[0] p[1] phi y).OneStepSse)
                runHolt p[0] p[1] phi y)
            |> List.minBy (fun s -> s.OneStepSse)
        match seasonLength with
        | Some m when m > 1 && y.Length >= 2 * m ->
            let hwParams = refine 3 (fun p -> (runHoltWinters p[0] p[1] p[2] m y).OneStepSse)
            let hw = runHoltWinters hwParams[0] hwParams[1] hwParams[2] m y
            // Compare mean one-step error over the points both forecast (HW skips the first season).
            let holtMse = if holt.NumFitted = 0 then Double.MaxValue else holt.OneStepSse / float holt.NumFitted
            let hwMse = if hw.NumFitted = 0 then Double.MaxValue else hw.OneStepSse / float hw.NumFitted
            if hwMse < holtMse then hw else holt
        | _ -> holt
