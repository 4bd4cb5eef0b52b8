module OServe.Planner.Tests.ForecastTests

open System
open Expecto
open OServe.Planner.Forecast
open OServe.Planner.Workload
open TestPaths

let private noisy (seed: int) (scale: float) (f: int -> float) (n: int) =
    let rng = Random(seed)
    Array.init n (fun t -> f t + scale * (rng.NextDouble() - 0.5))

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
        }
    ]
