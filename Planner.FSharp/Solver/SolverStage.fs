namespace OServe.Planner.Solver

open System
open System.Globalization
open Google.OrTools.Sat

/// How one CP-SAT stage ended. Only Optimal and Infeasible are proofs; Feasible and NoSolution mean
/// the stage stopped at its work budget (or the wall-clock cap) before proving anything more.
type StageStatus =
    | Optimal = 0
    | Feasible = 1
    | NoSolution = 2
    | Infeasible = 3
    | ModelInvalid = 4
    /// A heuristic ran to its own stopping rule: a plan, with no optimality claim.
    | Heuristic = 5

/// What one solver stage did: its status, objective and bound (in the stage's integer units), the
/// deterministic work it used, its wall time, and what stopped it when it did not finish.
type StageReport =
    { Stage: string
      Status: StageStatus
      Objective: float
      Bound: float
      /// CP-SAT deterministic seconds used (the same on every machine and load).
      DeterministicTime: float
      /// The stage's share of the work budget, deterministic seconds.
      Budget: float
      Seconds: float
      /// Why an unfinished stage stopped: "work budget", "wall-clock cap" (the answer then depends on
      /// the machine's speed and load) or a CP-SAT validation message; empty when it finished.
      StoppedBy: string }

    member s.IsFinished = s.Status = StageStatus.Optimal || s.Status = StageStatus.Infeasible || s.Status = StageStatus.Heuristic
    member s.HasSolution = s.Status = StageStatus.Optimal || s.Status = StageStatus.Feasible || s.Status = StageStatus.Heuristic

    /// Relative gap between objective and bound (0 when proved optimal, NaN without a solution).
    member s.Gap =
        if not s.HasSolution || s.Status = StageStatus.Heuristic then nan
        elif s.Status = StageStatus.Optimal then 0.0
        else abs (s.Bound - s.Objective) / max 1.0 (abs s.Bound)

    /// One line for summaries: "latency: feasible, stopped at its work budget (0.60 det. s), gap 2.10%".
    member s.Describe() =
        let inv (v: float) = v.ToString("0.###", CultureInfo.InvariantCulture)
        let status =
            match s.Status with
            | StageStatus.Optimal -> "optimal"
            | StageStatus.Feasible -> "feasible (not proved optimal)"
            | StageStatus.NoSolution -> "no solution found"
            | StageStatus.Infeasible -> "infeasible"
            | StageStatus.Heuristic -> "heuristic (no optimality claim)"
            | _ -> "model invalid"
        let stop = if s.StoppedBy = "" then "" else sprintf ", stopped by its %s" s.StoppedBy
        let gap = if s.Status = StageStatus.Feasible then sprintf ", gap %.2f%%" (100.0 * s.Gap) else ""
        if s.Status = StageStatus.Heuristic then sprintf "%s: %s, %.2f s" s.Stage status s.Seconds
        else sprintf "%s: %s%s%s, %s of %s det. s, %.2f s" s.Stage status stop gap (inv s.DeterministicTime) (inv s.Budget) s.Seconds

/// Settings that make a stage's answer a function of its inputs only: one fixed seed, a fixed
/// number of workers (more than one runs CP-SAT's interleaved search, whose batches are
/// deterministic for any number of workers), and a limit in deterministic time, a count of solver
/// operations, instead of seconds. A wall-clock cap is only a guard against a runaway solve: a
/// stage it stops is reported as stopped by it, since its answer then depends on the machine.
type StageSettings =
    { NumWorkers: int
      RandomSeed: int
      /// Seconds; 0 for none.
      MaxWallSeconds: float }

[<RequireQualifiedAccess>]
module SolverStage =
    let private text (v: float) = v.ToString("R", CultureInfo.InvariantCulture)

    /// The CP-SAT parameter string of a stage with `budget` deterministic seconds.
    let parameters (settings: StageSettings) (budget: float) (logging: bool) =
        let workers = max 1 settings.NumWorkers
        [ sprintf "num_workers:%d" workers
          sprintf "random_seed:%d" settings.RandomSeed
          sprintf "max_deterministic_time:%s" (text (max 0.01 budget))
          "linearization_level:2"
          if workers > 1 then "interleave_search:true"
          if settings.MaxWallSeconds > 0.0 then sprintf "max_time_in_seconds:%s" (text settings.MaxWallSeconds)
          // Presolve is not counted in deterministic time, and on the 256-GPU unpooled benchmark it
          // took 0.2-0.8 s wall per pass for no better plan at the same budget: off.
          "cp_model_presolve:false"
          if logging then "log_search_progress:true" ]
        |> String.concat ", "

    let private status (s: CpSolverStatus) =
        match s with
        | CpSolverStatus.Optimal -> StageStatus.Optimal
        | CpSolverStatus.Feasible -> StageStatus.Feasible
        | CpSolverStatus.Infeasible -> StageStatus.Infeasible
        | CpSolverStatus.ModelInvalid -> StageStatus.ModelInvalid
        | _ -> StageStatus.NoSolution

    /// Solves the model as it stands with `budget` deterministic seconds. A model CP-SAT rejects
    /// (an objective or constraint that could overflow 64 bits) is reported with CP-SAT's message.
    let run (settings: StageSettings) (model: CpModel) (budget: float) (stage: string) : CpSolver * StageReport =
        let solver = new CpSolver()
        let invalid = model.Validate()
        if not (String.IsNullOrEmpty invalid) then
            solver,
            { Stage = stage; Status = StageStatus.ModelInvalid; Objective = nan; Bound = nan; DeterministicTime = 0.0
              Budget = budget; Seconds = 0.0; StoppedBy = invalid }
        else
            // OSERVE_CPSAT_LOG=1 prints CP-SAT's search log on stderr (for diagnosing slow stages).
            let logging = Environment.GetEnvironmentVariable "OSERVE_CPSAT_LOG" = "1"
            solver.StringParameters <- parameters settings budget logging
            if logging then
                solver.SetLogCallback(fun (line: string | null) -> Console.Error.WriteLine("[" + stage + "] " + string line))
            let st = status (solver.Solve model)
            let dtime, wallTime =
                match solver.Response with
                | null -> 0.0, 0.0
                | response -> response.DeterministicTime, response.WallTime
            let ok = st = StageStatus.Optimal || st = StageStatus.Feasible
            let finished = st = StageStatus.Optimal || st = StageStatus.Infeasible
            let stoppedBy =
                if finished then ""
                elif st = StageStatus.ModelInvalid then "CP-SAT rejected the model"
                // The deterministic limit is checked between steps, so a stage that stops on it has
                // used (about) all of it; anything short of that was the wall-clock cap.
                elif settings.MaxWallSeconds > 0.0 && dtime < 0.95 * budget
                     && wallTime >= 0.95 * settings.MaxWallSeconds then "wall-clock cap"
                else "work budget"
            solver,
            { Stage = stage; Status = st
              Objective = (if ok then solver.ObjectiveValue else nan)
              Bound = (if ok then solver.BestObjectiveBound else nan)
              DeterministicTime = dtime
              Budget = budget
              Seconds = wallTime
              StoppedBy = stoppedBy }

    /// Largest |value| a linear expression sum_i coef_i * v_i can take when every v_i lies in
    /// [0, upper_i]: what CP-SAT checks against 2^63 before it accepts an objective or constraint.
    let magnitude (terms: (int64 * int64) seq) : float =
        terms |> Seq.sumBy (fun (coef, upper) -> abs (float coef) * float (max 0L upper))
