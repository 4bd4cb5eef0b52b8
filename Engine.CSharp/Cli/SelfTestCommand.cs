using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using OServe.Engine.Execution;
using OServe.Models;
using OServe.Models.Diagnostics;
using static TorchSharp.torch;

namespace OServe.Engine.Cli;

/// <summary>
/// <c>oserve selftest --device cuda</c>: the CUDA test subset where no test SDK exists (the GPU
/// bundle of scripts/gpu): <see cref="DeviceSelfTest"/>'s model checks plus the on-device sampler's
/// known draws. The xunit suites run the same code (and skip its CUDA half without a GPU).
/// </summary>
public static class SelfTestCommand
{
    public static Command Create()
    {
        var device = new Option<string>("--device") { Description = "auto (CUDA when TorchSharp sees it), cpu, cuda or cuda:N", DefaultValueFactory = _ => "auto" };
        var stories = new Option<string?>("--stories260k") { Description = "Directory with stories260K.bin and tok512.bin (greedy text on the device against the CPU); default: $OSERVE_STORIES260K" };
        var cards = new Option<string>("--cards") { Description = "Model cards to check one layer of on a GPU, comma-separated", DefaultValueFactory = _ => "Llama-2-7B,Llama-3-8B" };
        var json = new Option<string?>("--json") { Description = "Write the results as JSON here" };
        var command = new Command("selftest", "Check the engine's device path (paged == contiguous, TP shards == unsharded, stories260K text == CPU, device sampling); exit 1 when a check fails.")
        {
            device, stories, cards, json,
        };
        command.SetAction(parse =>
        {
            var io = parse.InvocationConfiguration.Output;
            Device dev;
            try { dev = DeviceSelection.Parse(parse.GetValue(device)!); }
            catch (ArgumentException e) { throw new CliUsageException($"--device: {e.Message}"); }
            var cardList = parse.GetValue(cards)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(n => Catalog.Model(n)).ToList();
            string? storiesDir = parse.GetValue(stories) ?? Environment.GetEnvironmentVariable("OSERVE_STORIES260K");
            io.WriteLine($"selftest on {DeviceSelection.Describe(dev)} (CUDA {(DeviceSelection.IsCudaAvailable() ? "available" : "not available")} to TorchSharp)");
            var results = DeviceSelfTest.Run(dev, storiesDir, cardList, io).ToList();
            results.Add(SamplerCheck(dev, io));
            int failed = results.Count(r => !r.Passed);
            io.WriteLine($"{results.Count(r => r.Passed && !r.Skipped)} passed, {failed} failed, {results.Count(r => r.Skipped)} skipped");
            if (parse.GetValue(json) is { } path) Write(path, dev, results);
            return failed == 0 ? OServeCli.ExitOk : OServeCli.ExitFailure;
        });
        return command;
    }

    /// <summary>Known draws from a known distribution, sorted and summed on the device.</summary>
    private static SelfTestResult SamplerCheck(Device device, TextWriter io)
    {
        var sw = Stopwatch.StartNew();
        SelfTestResult result;
        try
        {
            using var scope = NewDisposeScope();
            var logits = tensor(new[] { 0.1f, 0.4f, 0.2f, 0.3f }, device: device).log().unsqueeze(0).expand(5, 4).contiguous();
            var ids = DeviceSampler.Sample(logits, [new(0f, -1, 1f, 0), new(1f, -1, 1f, 0.05), new(1f, -1, 1f, 0.95), new(1f, 2, 1f, 0.99), new(1f, -1, 0.5f, 0.99)]);
            long[] expected = [1, 1, 0, 3, 3];
            bool ok = ids.SequenceEqual(expected);
            result = new SelfTestResult("device sampler draws", ok, $"ids [{string.Join(", ", ids)}], expected [{string.Join(", ", expected)}]", sw.Elapsed.TotalSeconds);
        }
        catch (Exception e)
        {
            result = new SelfTestResult("device sampler draws", false, $"{e.GetType().Name}: {e.Message}", sw.Elapsed.TotalSeconds);
        }
        io.WriteLine($"{(result.Passed ? "PASS" : "FAIL")} {result.Name}: {result.Detail} ({result.Seconds:F1} s)");
        return result;
    }

    private static void Write(string path, Device device, IReadOnlyList<SelfTestResult> results)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("device", DeviceSelection.Describe(device));
        json.WriteStartArray("checks");
        foreach (var r in results)
        {
            json.WriteStartObject();
            json.WriteString("name", r.Name);
            json.WriteString("status", r.Skipped ? "skipped" : r.Passed ? "passed" : "failed");
            json.WriteString("detail", r.Detail);
            json.WriteNumber("seconds", r.Seconds);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }
}
