using System.Text.Json;
using OServe.Engine.Cli;
using Xunit;

namespace OServe.Engine.Tests.Benchmarking;

/// <summary><c>oserve bench</c> through the real command line, in-process.</summary>
public sealed class BenchCommandTests
{
    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await OServeCli.RunAsync(["bench", .. args], output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Theory]
    [InlineData("--dataset-name sharegpt", "error --dataset-name: unknown value 'sharegpt' (known: random, trace)")]
    [InlineData("--request-rate -2", "error --request-rate: expected a positive number of requests/s or inf, got '-2'")]
    [InlineData("--num-prompts ten", "error --num-prompts: expected an integer, got 'ten'")]
    [InlineData("--dataset-name trace", "error --dataset-path: required with --dataset-name trace")]
    [InlineData("--burstiness 0", "error --burstiness: must be a positive number, got 0")]
    [InlineData("--max-concurrency 0", "error --max-concurrency: must be at least 1, got 0")]
    [InlineData("--goodput ttft:fast", "error --goodput: expected METRIC:MS with METRIC ttft, tpot or e2el and MS >= 0, got 'ttft:fast'")]
    [InlineData("--percentile-metrics ttft,p99", "error --percentile-metrics: unknown metric 'p99' (known: ttft, tpot, itl, e2el)")]
    [InlineData("--tokenizer llama", "error --tokenizer: unknown value 'llama' (known: auto, server, gpt2)")]
    [InlineData("--dataset-name trace --dataset-path /nonexistent/trace.csv", "error /nonexistent/trace.csv: file: file not found")]
    public async Task BadArgumentsGiveOneLineAndExitCode2(string args, string expected)
    {
        var (code, _, error) = await Run(["--base-url", "http://127.0.0.1:9", "--model", "m", .. args.Split(' ')]);
        Assert.Equal(expected, error.Trim());
        Assert.Equal(OServeCli.ExitBadInput, code);
    }

    [Fact]
    public async Task MissingBaseUrlIsNamed()
    {
        var (code, _, error) = await Run("--model", "m");
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Equal("error --base-url: required (e.g. http://127.0.0.1:8000)", error.Trim());
    }

    [Theory]
    [InlineData("auto")]
    [InlineData("gpt2")]
    public async Task AnUnreachableServerGivesOneLineAndExitCode1(string tokenizer)
    {
        var (code, _, error) = await Run("--base-url", "http://127.0.0.1:9", "--model", "m", "--tokenizer", tokenizer, "--num-prompts", "2");
        Assert.Equal("error cannot connect to http://127.0.0.1:9/v1/completions: connection refused", error.Trim());
        Assert.Equal(OServeCli.ExitFailure, code);
    }

    [Fact]
    public async Task ATraceRunPrintsTheTableAndSavesVllmFieldNames()
    {
        await using var server = FakeOpenAiServer.Start(n => n == 3 ? FakeBehavior.Http500 : FakeBehavior.Stream);
        var dir = Directory.CreateTempSubdirectory("oserve-bench-").FullName;
        try
        {
            var trace = Path.Combine(dir, "trace.jsonl");
            await File.WriteAllLinesAsync(trace, Enumerable.Range(0, 6).Select(i => $$"""{"timestamp": {{i * 10}}, "input_length": {{10 + i}}, "output_length": {{3 + i}}, "hash_ids": []}"""));
            var (code, output, error) = await Run("--base-url", server.BaseUrl.ToString(), "--model", "fake", "--dataset-name", "trace",
                "--dataset-path", trace, "--time-scale", "0.001", "--goodput", "ttft:10000", "e2el:10000", "--percentile-metrics", "ttft,tpot,itl,e2el",
                "--metric-percentiles", "50,99.9", "--save-result", "--result-dir", dir, "--result-filename", "r.json");

            Assert.Equal("", error);
            Assert.Equal(OServeCli.ExitOk, code);
            Assert.Contains("============ Serving Benchmark Result ============", output);
            Assert.Contains("Successful requests:                     5", output);
            Assert.Contains("Failed requests:                         1", output);
            Assert.Contains("P99.9 E2EL (ms):", output);
            Assert.Contains("  1 x HTTP 500 Internal Server Error: {\"error\":{\"message\":\"fake overload\"}}", output);

            using var json = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(dir, "r.json")));
            var root = json.RootElement;
            string[] fields =
            [
                "date", "backend", "model_id", "tokenizer_id", "num_prompts", "request_rate", "burstiness", "max_concurrency", "duration",
                "completed", "total_input_tokens", "total_output_tokens", "request_throughput", "request_goodput", "output_throughput",
                "total_token_throughput", "input_lens", "output_lens", "ttfts", "itls", "generated_texts", "errors",
            ];
            foreach (var metric in new[] { "ttft", "tpot", "itl", "e2el" })
                fields = [.. fields, $"mean_{metric}_ms", $"median_{metric}_ms", $"std_{metric}_ms", $"p50_{metric}_ms", $"p99.9_{metric}_ms"];
            Assert.All(fields, f => Assert.True(root.TryGetProperty(f, out _), $"no field {f}"));
            Assert.Equal("openai", root.GetProperty("backend").GetString());
            Assert.Equal(6, root.GetProperty("num_prompts").GetInt32());
            Assert.Equal(5, root.GetProperty("completed").GetInt32());
            // The fake server fails the 4th request it receives (after the uncounted test request); on a
            // loaded machine requests 10 ms apart may reach it out of order, so find the failed one.
            var errors = root.GetProperty("errors").EnumerateArray().Select(e => e.GetString() ?? "").ToArray();
            var failed = Assert.Single(Enumerable.Range(0, errors.Length), i => errors[i].Length > 0);
            Assert.Equal("HTTP 500 Internal Server Error: {\"error\":{\"message\":\"fake overload\"}}", errors[failed]);
            Assert.Equal(0, root.GetProperty("output_lens")[failed].GetInt32());
            Assert.Equal([10, 11, 12, 13, 14, 15], root.GetProperty("input_lens").EnumerateArray().Select(e => e.GetInt32()));
            Assert.Equal(10 + 11 + 12 + 13 + 14 + 15 - (10 + failed), root.GetProperty("total_input_tokens").GetInt32());
            Assert.Equal(3 + 4 + 5 + 6 + 7 + 8 - (3 + failed), root.GetProperty("total_output_tokens").GetInt32());
            Assert.Equal(Enumerable.Range(0, 6).Select(i => i == failed ? 0 : 2 + i), root.GetProperty("itls").EnumerateArray().Select(l => l.GetArrayLength()));
            Assert.Equal("trace", root.GetProperty("request_rate").GetString());
            Assert.Equal(JsonValueKind.Null, root.GetProperty("max_concurrency").ValueKind);
            Assert.Equal(root.GetProperty("request_throughput").GetDouble(), root.GetProperty("request_goodput").GetDouble(), 9);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
