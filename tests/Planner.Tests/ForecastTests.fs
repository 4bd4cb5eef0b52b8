module OServe.Planner.Tests.ForecastTests

open System
open Expecto
open OServe.Planner.Forecast
open OServe.Planner.Workload
open TestPaths

let private noisy (seed: int) (scale: float) (f: int -> float) (n: int) =
    let rng = Random(seed)
    Array.init n (fun t -> f t + scale * (rng.NextDouble() - 0.5))

/// Counts of a Poisson process at `rate(t)` per second over `windowSec` windows, as rates (Knuth's method, seeded).
let private poissonRates (seed: int) (windowSec: float) (rate: int -> float) (n: int) =
    let rng = Random(seed)
    Array.init n (fun t ->
        let limit = exp (-(rate t * windowSec))
        let mutable k = 0
        let mutable p = rng.NextDouble()
        while p > limit do
            k <- k + 1
            p <- p * rng.NextDouble()
        float k / windowSec)

[<Tests>]
let floor =
    testList "Forecast.floor" [
        test "a forecaster that knows the rate meets the Poisson floor 1 / sqrt(mean count)" {
            // 400 windows at 1.5 req/s over 60 s: 90 a window, floor 1 / sqrt(90) = 10.5%.
            let y = poissonRates 11 60.0 (fun _ -> 1.5) 400
            let oracle = Forecaster.rrmse (Array.create y.Length 1.5) y
            let floor = Forecaster.poissonFloor 60.0 y
            Expect.floatClose { absolute = 0.004; relative = 0.0 } floor (1.0 / sqrt 90.0) "floor"
            Expect.floatClose { absolute = 0.0; relative = 0.1 } oracle floor "the oracle sits on the floor"
            Expect.floatClose { absolute = 0.15; relative = 0.0 } (Forecaster.dispersion 60.0 y) 1.0 "Poisson dispersion is 1"
        }
        test "the random-walk reference is the floor at dispersion 1 and grows with it" {
            Expect.floatClose Accuracy.high (Forecaster.randomWalkRatio 1.0) 1.0 "Poisson at a steady rate"
            // D = 4: steps of variance 6 mu, P = (6 + sqrt(36 + 24)) / 2 mu, ratio sqrt(1 + P / mu).
            Expect.floatClose Accuracy.high (Forecaster.randomWalkRatio 4.0) (sqrt (1.0 + (6.0 + sqrt 60.0) / 2.0)) "D = 4"
        }
        test "Auto comes within 1.15x of the floor on a steady Poisson rate, and is deterministic" {
            let y = poissonRates 12 60.0 (fun _ -> 0.8) 120
            let auto = Forecaster.evaluate ForecastOptions.Default ForecastMethod.Auto y
            let floor = Forecaster.poissonFloor 60.0 auto.Actuals
            Expect.isLessThan (auto.Rrmse / floor) 1.15 (sprintf "auto %.3f vs floor %.3f" auto.Rrmse floor)
            Expect.equal (Forecaster.evaluate ForecastOptions.Default ForecastMethod.Auto y).Forecasts auto.Forecasts "same forecasts twice"
        }
        test "Auto finds a season in the history and uses Holt-Winters where it pays" {
            let season t = 2.0 * sin (2.0 * Math.PI * float t / 12.0)
            let y = poissonRates 13 60.0 (fun t -> 4.0 + season t) 96
            Expect.equal (ForecastModel.detectSeason y[0 .. 59]) (Some 12) "12-window season"
            let opts = { ForecastOptions.Default with MinHistory = 36 }
            let auto = Forecaster.evaluate opts ForecastMethod.Auto y
            let naive = Forecaster.evaluate opts ForecastMethod.Naive y
            Expect.isLessThan auto.Rrmse (0.8 * naive.Rrmse) "season helps"
        }
    ]

[<Tests>]
let tests =
    testList "Forecast" [
        test "RRMSE is sqrt(mean squared error) over the mean actual" {
            Expect.floatClose Accuracy.high (Forecaster.rrmse [| 1.0; 3.0 |] [| 2.0; 2.0 |]) 0.5 "sqrt(1)/2"
        }
        test "Holt tracks a linear trend closely and beats naive" {
            let y = noisy 1 0.2 (fun t -> 10.0 + 0.5 * float t) 60
            let opts = ForecastOptions.Default
            let holt = Forecaster.evaluate opts ForecastMethod.Smoothing y
            let naive = Forecaster.evaluate opts ForecastMethod.Naive y
            Expect.isLessThan holt.Rrmse 0.02 "small error"
            Expect.isLessThan holt.Rrmse naive.Rrmse "beats naive"
        }
        test "Holt-Winters captures a season that Holt cannot" {
            let season t = 3.0 * sin (2.0 * Math.PI * float t / 12.0)
            let y = noisy 2 0.2 (fun t -> 20.0 + 0.1 * float t + season t) 72
            let hw = Forecaster.evaluate { ForecastOptions.Default with SeasonLength = Some 12; MinHistory = 30 } ForecastMethod.Smoothing y
            let holt = Forecaster.evaluate { ForecastOptions.Default with MinHistory = 30 } ForecastMethod.Smoothing y
            let ma = Forecaster.evaluate { ForecastOptions.Default with MinHistory = 30 } ForecastMethod.MovingAverage y
            Expect.isLessThan hw.Rrmse (0.6 * holt.Rrmse) "season helps"
            Expect.isLessThan hw.Rrmse 0.03 "small error"
            Expect.isLessThan hw.Rrmse ma.Rrmse "beats moving average"
        }
        test "the fitted model forecasts several steps of a clean trend exactly" {
            let y = Array.init 30 (fun t -> 5.0 + 2.0 * float t)
            let s = ExponentialSmoothing.fit None y
            Expect.floatClose { absolute = 1e-6; relative = 1e-6 } (s.Forecast 3) (5.0 + 2.0 * 32.0) "3 steps ahead"
        }
        test "a burst after a quiet stretch is forecast at a real share of what was observed" {
            // Every one-step error before the last window is 0 whatever the parameters, so the fit
            // has nothing to choose by; it used to take alpha 0.05 and forecast 0.4 here.
            let quiet = Forecaster.next ForecastOptions.Default ForecastMethod.Smoothing [| 0.0; 0.0; 0.0; 0.0; 8.0 |]
            Expect.isGreaterThanOrEqual quiet 4.0 "at least half the new level after all-zero windows"
            let steady = Forecaster.next ForecastOptions.Default ForecastMethod.Smoothing [| 2.0; 2.0; 2.0; 2.0; 8.0 |]
            Expect.isGreaterThanOrEqual steady 5.0 "at least half the step after a constant level"
            // Where the history does say something, the fit still decides: a noisy level stays smoothed.
            let noisyLevel = noisy 3 4.0 (fun _ -> 10.0) 40
            let s = ExponentialSmoothing.fit None noisyLevel
            match s.Model with
            | Holt(alpha, _, _) -> Expect.isLessThan alpha 0.5 (sprintf "alpha %.2f on a noisy flat level" alpha)
            | m -> failtestf "expected Holt, got %A" m
        }
        test "forecasts never go negative" {
            let y = Array.init 20 (fun t -> max 0.0 (10.0 - float t))
            Expect.isGreaterThanOrEqual ((ExponentialSmoothing.fit None y).Forecast 5) 0.0 "clipped"
        }
        test "real Azure code trace: smoothing is no worse than naive per type (60 s windows)" {
            let path = sharedFile "traces/azure2023/AzureLLMInferenceTrace_code.csv"
            match TraceReader.read path with
            | Error es -> failtestf "%A" es
            | Ok trace ->
                let types = RequestTyping.fit TypingOptions.Default trace.Requests |> Result.defaultWith failtest
                let series = RequestTyping.rateSeries types 60.0 trace.Requests
                let opts = ForecastOptions.Default
                let es = series |> Array.map (Forecaster.evaluate opts ForecastMethod.Smoothing)
                let ns = series |> Array.map (Forecaster.evaluate opts ForecastMethod.Naive)
                Expect.isLessThan (Forecaster.pooledRrmse es) (Forecaster.pooledRrmse ns * 1.05) "smoothing vs naive"
                let autos = series |> Array.map (Forecaster.evaluate opts ForecastMethod.Auto)
                // Bursty on/off traffic: averaging over windows beats chasing the last burst.
                Expect.isLessThan (Forecaster.pooledRrmse autos) (Forecaster.pooledRrmse es) "auto vs smoothing"
        }
    ]
