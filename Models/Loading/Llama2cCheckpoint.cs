using OServe.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Loading;

/// <summary>
/// llama2.c checkpoint (.bin, "version 0" as run.c reads it): seven int32s (dim, hidden_dim,
/// n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means the classifier
/// is stored separately), then float32 weights in run.c's order, each [out, in] and stacked over
/// layers. q/k rows are converted from the interleaved rotary layout to rotate-half.
/// </summary>
public static class Llama2cCheckpoint
{
    private const int HeaderBytes = 7 * sizeof(int);

    public static LlamaConfig ReadConfig(string path)
    {
        using var stream = OpenOrThrow(path);
        return ReadHeader(path, stream);
    }

    public static (LlamaConfig Config, InMemoryWeightSource Weights) Read(string path)
    {
        using var stream = OpenOrThrow(path);
        var c = ReadHeader(path, stream);
        int hd = c.EffectiveHeadDim;
        long expected = HeaderBytes + 4L * FloatCount(c);
        if (stream.Length != expected)
            throw new InvalidDataException(
                $"{path}: a llama2.c checkpoint with this header (dim {c.Dim}, hidden_dim {c.HiddenDim}, n_layers {c.NumLayers}, n_heads {c.NumHeads}, " +
                $"n_kv_heads {c.NumKvHeads}, vocab_size {c.VocabSize}, seq_len {c.MaxSeqLen}) is {expected} bytes, but the file is {stream.Length}" +
                (stream.Length < expected ? " (truncated?)" : ""));

        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using var scope = NewDisposeScope();
        Tensor Next(params long[] shape)
        {
            long count = shape.Aggregate(1L, (a, b) => a * b);
            var buffer = new byte[checked((int)(count * 4))];
            stream.ReadExactly(buffer);
            return TensorBytes.FromBytes(buffer, ScalarType.Float32, shape);
        }
        void PerLayer(Func<int, string> name, long[] shape, Func<Tensor, Tensor>? convert = null)
        {
            for (int l = 0; l < c.NumLayers; l++)
            {
                var t = Next(shape);
                tensors[name(l)] = (convert is null ? t : convert(t)).DetachFromDisposeScope();
            }
        }

        tensors[LlamaWeightNames.Embedding] = Next(c.VocabSize, c.Dim).DetachFromDisposeScope();
        PerLayer(LlamaWeightNames.AttentionNorm, [c.Dim]);
        PerLayer(LlamaWeightNames.Query, [c.QueryDim, c.Dim], t => RotaryLayout.InterleavedToHalves(t, c.NumHeads, hd));
        PerLayer(LlamaWeightNames.Key, [c.KvDim, c.Dim], t => RotaryLayout.InterleavedToHalves(t, c.NumKvHeads, hd));
        PerLayer(LlamaWeightNames.Value, [c.KvDim, c.Dim]);
        PerLayer(LlamaWeightNames.Output, [c.Dim, c.QueryDim]);
        PerLayer(LlamaWeightNames.FfnNorm, [c.Dim]);
        PerLayer(LlamaWeightNames.Gate, [c.HiddenDim, c.Dim]);
        PerLayer(LlamaWeightNames.Down, [c.Dim, c.HiddenDim]);
        PerLayer(LlamaWeightNames.Up, [c.HiddenDim, c.Dim]);
        tensors[LlamaWeightNames.FinalNorm] = Next(c.Dim).DetachFromDisposeScope();
        // Legacy freq_cis_real/imag tables (seq_len x head_dim/2 each): rotary tables are recomputed.
        stream.Seek(2L * c.MaxSeqLen * (hd / 2) * 4, SeekOrigin.Current);
        if (!c.TieWordEmbeddings) tensors[LlamaWeightNames.Classifier] = Next(c.VocabSize, c.Dim).DetachFromDisposeScope();
        return (c, new InMemoryWeightSource(path, tensors));
    }

    private static FileStream OpenOrThrow(string path) =>
        File.Exists(path) ? File.OpenRead(path) : throw new FileNotFoundException($"{path}: llama2.c checkpoint not found", path);

    private static LlamaConfig ReadHeader(string path, FileStream stream)
    {
        if (stream.Length < HeaderBytes) throw new InvalidDataException($"{path}: {stream.Length} bytes is too short for the 28-byte llama2.c header");
        var header = new byte[HeaderBytes];
        stream.ReadExactly(header);
        int Field(int i) => BitConverter.ToInt32(header, i * 4);
        int vocab = Field(5);
        var config = new LlamaConfig
        {
            Dim = Field(0),
            HiddenDim = Field(1),
            NumLayers = Field(2),
            NumHeads = Field(3),
            NumKvHeads = Field(4),
            VocabSize = Math.Abs(vocab),
            MaxSeqLen = Field(6),
            TieWordEmbeddings = vocab > 0,
        };
        config.Validate($"{path} (llama2.c header)");
        return config;
    }

    private static long FloatCount(LlamaConfig c)
    {
        long layers = c.NumLayers;
        long embed = (long)c.VocabSize * c.Dim;
        return embed
            + layers * c.Dim * 2                                   // rms_att, rms_ffn
            + layers * c.Dim * ((long)c.QueryDim + 2L * c.KvDim)   // wq, wk, wv
            + layers * (long)c.QueryDim * c.Dim                    // wo
            + layers * 3L * c.Dim * c.HiddenDim                    // w1, w2, w3
            + c.Dim                                                // rms_final
            + (long)c.MaxSeqLen * c.EffectiveHeadDim               // freq_cis_real + imag
            + (c.TieWordEmbeddings ? 0 : embed);
    }
}
