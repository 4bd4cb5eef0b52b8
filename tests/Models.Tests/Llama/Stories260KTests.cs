using OServe.Models.Llama;
using OServe.Models.Tests.Llama;
using OServe.Models.Tokenization;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Llama;

public sealed class Stories260KTests
{
    [SkippableTheory]
    [InlineData(ForwardPath.Reference)]
    [InlineData(ForwardPath.Fused)]
    public void GreedyGenerationFromBosReproducesTheDocumentedText(ForwardPath path)
    {
        SharedData.SkipUnlessStories260K();
        using var loaded = ModelLoader.Load(Path.Combine(SharedData.Stories260K, "stories260K.bin"), CPU, ScalarType.Float32, forward: path);
        var generated = Greedy.Generate(loaded.Model, [loaded.Tokenizer.BosId], steps: 256);
        string text = loaded.Tokenizer.Decode(generated);
        string documented = DocumentedGreedyText();
        Assert.StartsWith("Once upon a time", documented);
        Assert.Equal(documented, text);
    }

    [SkippableFact]
    public void A_directory_holding_a_llama2c_checkpoint_loads_it_with_its_tokenizer()
    {
        SharedData.SkipUnlessStories260K();
        using var loaded = ModelLoader.Load(SharedData.Stories260K, CPU, ScalarType.Float32);
        Assert.Equal("stories260K", loaded.Name);
        Assert.Equal(512, loaded.Tokenizer.VocabSize);
        Assert.Contains("tok512.bin", loaded.Tokenizer.Name);
    }

    [Fact]
    public void A_directory_with_no_model_says_what_it_looked_for()
    {
        var empty = Directory.CreateTempSubdirectory("oserve-model-").FullName;
        var e = Assert.Throws<FileNotFoundException>(() => ModelLoader.Load(empty, CPU, ScalarType.Float32));
        Assert.Contains("no config.json", e.Message);
        Assert.Contains("llama2.c", e.Message);
    }

    /// <summary>The text stories260K.md shows for `./run stories260K.bin -z tok512.bin -t 0.0`.</summary>
    private static string DocumentedGreedyText()
    {
        var lines = File.ReadAllLines(Path.Combine(SharedData.Stories260K, "stories260K.md"));
        int command = Array.FindIndex(lines, l => l.Contains("-t 0.0", StringComparison.Ordinal) && l.StartsWith("$ ./run", StringComparison.Ordinal));
        Assert.True(command >= 0, "stories260K.md no longer shows the greedy run command");
        int end = Array.FindIndex(lines, command, l => l.StartsWith("```", StringComparison.Ordinal));
        return string.Join("\n", lines[(command + 1)..end]);
    }
}
