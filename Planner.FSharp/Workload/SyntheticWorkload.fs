namespace OServe.Planner.Workload

open System

/// A lognormal length distribution fitted from a published mean and median:
/// median = exp(mu), mean = exp(mu + sigma^2 / 2)  =>  mu = ln median, sigma = sqrt(2 ln(mean / median)).
type LengthDistribution =
    { Mu: float
      Sigma: float }

    static member OfMeanMedian(mean: float, median: float) =
        if median <= 0.0 || mean < median then
            invalidArg "mean" (sprintf "lognormal fit needs mean >= median > 0 (mean %g, median %g)" mean median)
        { Mu = log median; Sigma = sqrt (2.0 * log (mean / median)) }

/// One class of traffic (e.g. Azure code or conversation) with its own rate curve:
/// rate(t) = BaseRate * (1 + Amplitude * sin(2 pi (t + PhaseSec) / PeriodSec)) * (1 + TrendPerHour * t / 3600)
/// (the Contracts SyntheticComponent's curve, plus an optional trend).
/// Different phases make the mix between classes shift over time.
type TrafficClass =
    { Name: string
      Input: LengthDistribution
      Output: LengthDistribution
      BaseRate: float
      Amplitude: float
      PeriodSec: float
      PhaseSec: float
      TrendPerHour: float }

type SyntheticOptions =
    { Classes: TrafficClass list
      DurationSec: float
      MaxContextTokens: int
      Seed: int }

[<RequireQualifiedAccess>]
module SyntheticWorkload =
    /// Azure LLM inference 2023, code: input mean 2048 / median 1469, output mean 28 / median 13; ~2.6 req/s.
    let azureCode =
        { Name = "code"
          Input = LengthDistribution.OfMeanMedian(2048.0, 1469.0)
          Output = LengthDistribution.OfMeanMedian(28.0, 13.0)
          BaseRate = 2.6
          Amplitude = 0.4
          PeriodSec = 1800.0
          PhaseSec = 0.0
          TrendPerHour = 0.0 }

    /// Azure LLM inference 2023, conversation: input mean 1155 / median 1020, output mean 211 / median 129; ~5.5 req/s.
    let azureConv =
        { Name = "conv"
          Input = LengthDistribution.OfMeanMedian(1155.0, 1020.0)
          Output = LengthDistribution.OfMeanMedian(211.0, 129.0)
          BaseRate = 5.5
          Amplitude = 0.4
          PeriodSec = 1800.0
          PhaseSec = 900.0
          TrendPerHour = 0.0 }

    /// One hour of mixed code + conversation traffic whose mix swings with a 30-minute period.
    let defaults =
        { Classes = [ azureCode; azureConv ]; DurationSec = 3600.0; MaxContextTokens = 8192; Seed = 42 }

    let rateAt (c: TrafficClass) (t: float) =
        let season = 1.0 + c.Amplitude * sin (2.0 * Math.PI * (t + c.PhaseSec) / c.PeriodSec)
        max 0.0 (c.BaseRate * season * (1.0 + c.TrendPerHour * t / 3600.0))

    let private gaussian (rng: Random) =
        // Box-Muller; 1 - NextDouble() keeps the log argument in (0, 1].
        let u1 = 1.0 - rng.NextDouble()
        let u2 = rng.NextDouble()
        sqrt (-2.0 * log u1) * cos (2.0 * Math.PI * u2)

    let private sampleLength (rng: Random) (d: LengthDistribution) (maxTokens: int) =
        let v = exp (d.Mu + d.Sigma * gaussian rng)
        int (Math.Round v) |> max 1 |> min maxTokens

    /// Non-homogeneous Poisson arrivals per class by thinning, merged and sorted. Deterministic for a
    /// given Seed (System.Random with a seed is stable across runs). Input + output <= MaxContextTokens.
    let generate (options: SyntheticOptions) : Trace =
        let rng = Random(options.Seed)
        let requests = Collections.Generic.List<Request>()
        for c in options.Classes do
            // Upper bound of the rate over the horizon for thinning.
            let peak =
                c.BaseRate * (1.0 + abs c.Amplitude) * (1.0 + max 0.0 c.TrendPerHour * options.DurationSec / 3600.0)
            if peak > 0.0 then
                let mutable t = 0.0
                while t < options.DurationSec do
                    t <- t - log (1.0 - rng.NextDouble()) / peak
                    if t < options.DurationSec && rng.NextDouble() * peak <= rateAt c t then
                        let input = sampleLength rng c.Input (options.MaxContextTokens - 1)
                        let output = sampleLength rng c.Output (options.MaxContextTokens - input)
                        requests.Add { Arrival = t; InputTokens = input; OutputTokens = output }
        let sorted = requests.ToArray() |> Array.sortBy (fun r -> r.Arrival)
        { Source = sprintf "synthetic(seed=%d)" options.Seed; Requests = sorted; NumDropped = 0; DropReason = "" }
