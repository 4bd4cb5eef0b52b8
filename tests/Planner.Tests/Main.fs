module OServe.Planner.Tests.Main

open Expecto

/// `dotnet run --project tests/Planner.Tests -c Release -- benchmark [runs]` prints the planner
/// benchmark instead of running the tests (performance is measured, never asserted in tests).
[<EntryPoint>]
let main argv =
    match List.ofArray argv with
    | "benchmark-unpooled" :: budgets :: workers :: runs :: _ ->
        let sb = System.Text.StringBuilder()
        OServe.Planner.PlannerBenchmark.unpooled sb (budgets.Split(',') |> Array.map float |> List.ofArray) (int workers) (int runs)
        printfn "%s" (sb.ToString())
        0
    | "benchmark" :: rest ->
        let runs = match rest with | n :: _ -> int n | [] -> 5
        printfn "%s" (OServe.Planner.PlannerBenchmark.run TestPaths.sharedDir runs)
        0
    | _ -> Tests.runTestsInAssemblyWithCLIArgs [] argv
