module OServe.Planner.Tests.TestPaths

open System.IO
open Expecto

/// Fixtures are copied next to the test assembly (see the fsproj).
let fixture (name: string) = Path.Combine(System.AppContext.BaseDirectory, "fixtures", name)

/// repoRoot/../shared, found by walking up from the test's base directory to the folder holding
/// OServe.sln; None when absent (tests that need it skip).
let sharedDir : string option =
    let rec up (dir: DirectoryInfo | null) =
        match dir with
        | null -> None
        | d when File.Exists(Path.Combine(d.FullName, "OServe.sln")) ->
            match d.Parent with
            | null -> None
            | p ->
                let shared = Path.Combine(p.FullName, "shared")
                if Directory.Exists shared then Some shared else None
        | d -> up d.Parent
    up (DirectoryInfo System.AppContext.BaseDirectory)

/// Path of a file under ../shared, or a skiptest with a clear message.
let sharedFile (relative: string) : string =
    match sharedDir with
    | Some dir when File.Exists(Path.Combine(dir, relative)) -> Path.Combine(dir, relative)
    | Some dir -> skiptest (sprintf "shared data %s not found under %s" relative dir)
    | None -> skiptest (sprintf "../shared not found next to the repository; skipping the test that reads %s" relative)

/// The repository root (the folder holding OServe.sln).
let repoRoot : string =
    let rec up (dir: DirectoryInfo | null) =
        match dir with
        | null -> failwith "OServe.sln not found above the test directory"
        | d when File.Exists(Path.Combine(d.FullName, "OServe.sln")) -> d.FullName
        | d -> up d.Parent
    up (DirectoryInfo System.AppContext.BaseDirectory)
