using System.CommandLine;
using OServe.Contracts;
using OServe.Models;
using TorchSharp;

namespace OServe.Engine.Cli;

/// <summary>
/// The options that say which model to run and where, shared by <c>serve</c>, <c>profile</c> and
/// <c>bench-model</c>: a checkpoint (<c>--model</c>), a card's shape with random weights
/// (<c>--model-card Llama-2-7B --random-weights [--layers N]</c>) or the built-in model;
/// <c>--device auto|cpu|cuda[:N]</c> and <c>--dtype auto|float32|bfloat16|float16</c> (auto:
/// float32 on the CPU, bfloat16 on a GPU).
/// </summary>
public sealed class ModelChoice
{
    public Option<string?> Model { get; } = new("--model") { Description = "A llama2.c .bin checkpoint (tokenizer .bin beside it) or a Hugging Face directory; default: the built-in random-weight model" };
    public Option<string?> Tokenizer { get; } = new("--tokenizer") { Description = "llama2.c tokenizer .bin, when not beside the checkpoint" };
    public Option<string> DType { get; } = new("--dtype") { Description = "auto (float32 on the CPU, bfloat16 on a GPU), float32, bfloat16 or float16", DefaultValueFactory = _ => "auto" };
    public Option<string> Device { get; } = new("--device") { Description = "auto (CUDA when TorchSharp sees it), cpu, cuda or cuda:N", DefaultValueFactory = _ => "auto" };
    public Option<string?> Card { get; } = new("--model-card") { Description = "A model card (built-in name, e.g. Llama-2-7B, or YAML) whose exact shape to build; with --random-weights" };
    public Option<bool> RandomWeights { get; } = new("--random-weights") { Description = "With --model-card: random weights drawn on the device (for measuring speed; the text is noise)" };
    public Option<int?> Layers { get; } = new("--layers") { Description = "With --model-card: build only this many of the card's layers" };
    public Option<long> Seed { get; } = new("--seed") { Description = "Seed of the random weights (built-in model or --random-weights)", DefaultValueFactory = _ => 1234 };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Model, Tokenizer, DType, Device, Card, RandomWeights, Layers, Seed })
            command.Options.Add(option);
    }

    public torch.Device ResolveDevice(ParseResult parse)
    {
        try
        {
            return DeviceSelection.Parse(parse.GetValue(Device)!);
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException($"--device: {e.Message}");
        }
    }

    public torch.ScalarType ResolveDType(ParseResult parse, torch.Device device)
    {
        string text = parse.GetValue(DType)!;
        return text.Equals("auto", StringComparison.OrdinalIgnoreCase) ? DeviceSelection.DefaultDType(device) : ServeCommand.ParseDType(text);
    }

    /// <summary>The card named by --model-card (null when none), checked to be usable with the other options.</summary>
    public ModelCard? ResolveCard(ParseResult parse)
    {
        var name = parse.GetValue(Card);
        bool random = parse.GetValue(RandomWeights);
        if (name is null)
        {
            if (random) throw new CliUsageException("--random-weights: needs --model-card (the shape to fill with random weights)");
            if (parse.GetValue(Layers) is not null) throw new CliUsageException("--layers: only with --model-card");
            return null;
        }
        if (parse.GetValue(Model) is not null) throw new CliUsageException("--model-card: give either --model (a checkpoint) or --model-card, not both");
        if (!random) throw new CliUsageException($"--model-card {name}: needs --random-weights (a card has a shape, not weights)");
        if (parse.GetValue(Layers) is < 1) throw new CliUsageException($"--layers: must be at least 1, got {parse.GetValue(Layers)}");
        return Catalog.Model(name);
    }

    /// <summary>The shape and tokenizer of what the options name (a checkpoint or the built-in model), reading no weights.</summary>
    public ModelShape LoadShape(ParseResult parse)
    {
        if (ResolveCard(parse) is { } card)
            throw new CliUsageException($"--model-card {card.Name}: workers serve --model or the built-in model, so a cluster front end takes the same");
        var path = parse.GetValue(Model);
        if (path is null) return BuiltInModel.Shape(new BuiltInModelOptions { Seed = parse.GetValue(Seed) });
        try
        {
            return ModelLoader.ReadShape(path, parse.GetValue(Tokenizer));
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or UnauthorizedAccessException)
        {
            throw new CliUsageException($"--model {path}: {e.Message}");
        }
    }

    /// <summary>Loads what the options name on the device they name.</summary>
    public LoadedModel Load(ParseResult parse, int? maxSeqLen = null)
    {
        var device = ResolveDevice(parse);
        var dtype = ResolveDType(parse, device);
        var card = ResolveCard(parse);
        long seed = parse.GetValue(Seed);
        if (card is not null)
        {
            try
            {
                return CardModels.CreateRandom(card, device, dtype, seed, parse.GetValue(Layers), maxSeqLen);
            }
            catch (ArgumentException e)
            {
                throw new CliUsageException($"--model-card {card.Name}: {e.Message}");
            }
        }
        var path = parse.GetValue(Model);
        if (path is null) return BuiltInModel.Create(new BuiltInModelOptions { Seed = seed, DType = dtype, Device = device });
        try
        {
            return ModelLoader.Load(path, device, dtype, parse.GetValue(Tokenizer));
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or UnauthorizedAccessException)
        {
            throw new CliUsageException($"--model {path}: {e.Message}");
        }
    }
}
