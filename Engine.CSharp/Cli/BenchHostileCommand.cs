using System.CommandLine;
using Microsoft.Extensions.Logging;
using OServe.Engine.Execution;
using OServe.Engine.Serving;
using OServe.Engine.Serving.Hostile;

namespace OServe.Engine.Cli;

/// <summary>
/// <c>oserve bench-hostile</c>: starts the server in this process on 127.0.0.1 (a free port) and
/// prints the bounded-work figures (25 MB prompt refusal time, CPU spent after an abandoned 1 MB
/// prompt) and the hostile suite's counts. Exit code 1 when any case got a 5xx or the server stopped answering.
/// </summary>
public static class BenchHostileCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "A llama2.c .bin (or its directory) or a Hugging Face directory; default: the built-in random-weight model" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "llama2.c tokenizer .bin, when not beside the checkpoint" };
        var trials = new Option<int>("--trials") { Description = "Times the 25 MB prompt is sent", DefaultValueFactory = _ => 10 };
        var command = new Command("bench-hostile", "Bounded work per request and the hostile-input suite against a server started here: prints the figures of the serving README.")
        {
            model, tokenizer, trials,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            int numTrials = parse.GetValue(trials) is var t and >= 1 ? t : throw new CliUsageException("--trials: must be at least 1");
            using var loaded = ServeCommand.LoadModel(parse.GetValue(model), parse.GetValue(tokenizer), TorchSharp.torch.ScalarType.Float32, 1234);
            output.WriteLine($"model: {loaded.Description}");
            await using var engine = LocalEngineBuilder.Create(loaded, new EngineSettings { MaxNumSeqs = 16, KvCacheGib = 0.25 });
            const string ApiKey = "bench-hostile";
            var options = new ServeOptions { Port = 0, ApiKey = ApiKey };
            await using var app = ServerHost.Build(options, engine, configure: b => b.Logging.ClearProviders(), engineClock: () => engine.Clock.Now);
            // The same engine behind a second server whose byte limit lets a 1 MB prompt through to the tokenizer.
            await using var unlimited = ServerHost.Build(options with { MaxPromptBytes = 64L << 20 }, engine,
                configure: b => b.Logging.ClearProviders(), engineClock: () => engine.Clock.Now);
            await app.StartAsync(cancellationToken);
            await unlimited.StartAsync(cancellationToken);
            var limits = ServingLimits.For(options, engine);
            var result = await HostileBenchmark.RunAsync(ServerHost.BoundAddress(app), ServerHost.BoundAddress(unlimited), engine, limits,
                engine.ModelName, ApiKey, numTrials, output);
            HostileBenchmark.Print(result, limits, output);
            await unlimited.StopAsync(CancellationToken.None);
            await app.StopAsync(CancellationToken.None);
            return result.Suite.Any(x => x.Response.Status >= 500 || !x.IsAlive) ? OServeCli.ExitFailure : OServeCli.ExitOk;
        });
        return command;
    }
}
