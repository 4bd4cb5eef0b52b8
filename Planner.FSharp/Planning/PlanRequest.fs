namespace OServe.Planner.Planning

open System.Collections.Generic
open OServe.Contracts
open OServe.Planner.CostModel
open OServe.Planner.Solver

/// Everything `oserve plan` needs; settable properties so C# can use an object initializer.
type PlanRequest(cluster: Cluster, model: ModelCard, requestTypes: IReadOnlyList<RequestTypeSpec>) =
    member _.Cluster = cluster
    member _.Model = model
    /// Types with their forecast rates for the window.
    member _.RequestTypes = requestTypes
    member val Slo = Slo() with get, set
    member val Options = OServe.Contracts.PlannerOptions() with get, set
    /// The plan now running, or null for a cold start.
    member val Current: Plan | null = null with get, set
    member val WindowStartS = 0.0 with get, set
    member val WindowS = 60.0 with get, set
    member val Coefficients = CostCoefficients.defaults with get, set
    /// Measured rates and latencies per (config, type); null: the analytic model of Coefficients.
    member val ServiceModel: IServiceModel | null = null with get, set
    member val Constraints: PlannerConstraint[] = [||] with get, set
    /// Built-in constraints (a scenario's `constraints:`, `oserve plan --constraints`), kept by every planner.
    member val ConstraintSpecs: IReadOnlyList<ConstraintSpec> = [||] with get, set
    /// CP-SAT workers; any fixed count gives the same plan on every run (see SolverStage).
    member val NumWorkers = 1 with get, set
    /// Per type (request_types order): requests that exceeded the model's context (shown as a
    /// column of the summary when set).
    member val OverContextPerType: int[] = [||] with get, set
    /// One line on how the workload met the context (ContextReport.Describe), printed in the summary.
    member val ContextNote = "" with get, set
    /// Skip the keep-or-switch test and return the fresh solve placed against Current: for callers
    /// that rank candidate plans themselves (the simulator's plan verification).
    member val AlwaysSwitch = false with get, set

type PlanOutcome =
    { Plan: Plan
      /// A readable table of the plan (print it as is).
      Summary: string
      Warnings: string[]
      /// Why the planner switched or kept the current plan; empty without a current plan.
      SwitchReason: string
      Solution: Solution
      Deployment: Deployment }

/// `oserve plan --schedule`: every window of a trace is forecast, planned and switched in turn.
type ScheduleRequest(cluster: Cluster, model: ModelCard, trace: OServe.Planner.Workload.Trace) =
    member _.Cluster = cluster
    member _.Model = model
    member _.Trace = trace
    member val NumTypes = 4 with get, set
    member val WindowS = 60.0 with get, set
    /// Windows per season for Holt-Winters; 0 for Holt only.
    member val SeasonLength = 0 with get, set
    /// Plan at most this many windows (0 = all).
    member val MaxWindows = 0 with get, set
    member val Slo = Slo() with get, set
    member val Options = OServe.Contracts.PlannerOptions() with get, set
    member val Coefficients = CostCoefficients.defaults with get, set
    /// Measured rates and latencies per (config, type); null: the analytic model of Coefficients.
    member val ServiceModel: IServiceModel | null = null with get, set
    member val Constraints: PlannerConstraint[] = [||] with get, set
    member val ConstraintSpecs: IReadOnlyList<ConstraintSpec> = [||] with get, set
    member val NumWorkers = 1 with get, set
    /// One line on how the trace met the context, printed above the schedule table.
    member val ContextNote = "" with get, set

type ScheduleOutcome =
    { Schedule: PlanSchedule
      Summary: string
      NumSwitches: int
      Outcomes: PlanOutcome[] }
