namespace OServe.Models.Llama;

/// <summary>
/// Canonical tensor names (Hugging Face Llama naming). Every loader produces these names, all in
/// the nn.Linear layout [out, in] and in the rotate-half rotary convention, so that a
/// tensor-parallel builder can slice by name: q/k/v/gate/up are column-parallel (split dim 0),
/// o/down are row-parallel (split dim 1).
/// </summary>
public static class LlamaWeightNames
{
    public const string Embedding = "model.embed_tokens.weight";
    public const string FinalNorm = "model.norm.weight";
    public const string Classifier = "lm_head.weight";

    public static string AttentionNorm(int layer) => $"model.layers.{layer}.input_layernorm.weight";
    public static string Query(int layer) => $"model.layers.{layer}.self_attn.q_proj.weight";
    public static string Key(int layer) => $"model.layers.{layer}.self_attn.k_proj.weight";
    public static string Value(int layer) => $"model.layers.{layer}.self_attn.v_proj.weight";
    public static string Output(int layer) => $"model.layers.{layer}.self_attn.o_proj.weight";
    public static string FfnNorm(int layer) => $"model.layers.{layer}.post_attention_layernorm.weight";
    public static string Gate(int layer) => $"model.layers.{layer}.mlp.gate_proj.weight";
    public static string Up(int layer) => $"model.layers.{layer}.mlp.up_proj.weight";
    public static string Down(int layer) => $"model.layers.{layer}.mlp.down_proj.weight";

    /// <summary>Every name a model with this config needs, with its expected shape.</summary>
    public static IEnumerable<(string Name, long[] Shape)> Expected(LlamaConfig c)
    {
        yield return (Embedding, [c.VocabSize, c.Dim]);
        for (int l = 0; l < c.NumLayers; l++)
        {
            yield return (AttentionNorm(l), [c.Dim]);
            yield return (Query(l), [c.QueryDim, c.Dim]);
            yield return (Key(l), [c.KvDim, c.Dim]);
            yield return (Value(l), [c.KvDim, c.Dim]);
            yield return (Output(l), [c.Dim, c.QueryDim]);
            yield return (FfnNorm(l), [c.Dim]);
            yield return (Gate(l), [c.HiddenDim, c.Dim]);
            yield return (Up(l), [c.HiddenDim, c.Dim]);
            yield return (Down(l), [c.Dim, c.HiddenDim]);
        }
        yield return (FinalNorm, [c.Dim]);
        if (!c.TieWordEmbeddings) yield return (Classifier, [c.VocabSize, c.Dim]);
    }
}
