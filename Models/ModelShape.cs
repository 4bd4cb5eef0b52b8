using OServe.Models.Llama;
using OServe.Models.Tokenization;

namespace OServe.Models;

/// <summary>
/// A model without its weights: the shape and the tokenizer. What a process that routes requests
/// but runs no replica needs (the cluster front end): it tokenizes, checks lengths and validates
/// plans, so it reads config.json or the llama2.c header and the tokenizer files, never the weights.
/// </summary>
public sealed record ModelShape(LlamaConfig Config, ITokenizer Tokenizer, string Name, string Description);
