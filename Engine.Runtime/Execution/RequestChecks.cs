namespace OServe.Engine.Execution;

/// <summary>
/// The checks a replica's engine makes at admission (<see cref="AsyncEngine"/>), also made by the
/// multi-node front end before a request leaves for a worker, so a bad request is a 400 naming its
/// field and never a broken stream. One implementation, so the two cannot drift apart.
/// </summary>
public static class RequestChecks
{
    /// <summary>Throws <see cref="ArgumentException"/> with the OpenAI field as ParamName.</summary>
    public static void Validate(GenerationRequest request, int vocabSize, int maxModelLength)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (string.IsNullOrEmpty(request.RequestId))
            throw new ArgumentException("the request id is empty", "request_id");
        var sampling = request.Sampling ?? throw new ArgumentException("sampling parameters are missing", "sampling");
        var prompt = request.PromptTokens;
        if (prompt is null || prompt.Count == 0)
            throw new ArgumentException("the prompt is empty", "prompt");
        for (int i = 0; i < prompt.Count; i++)
            if ((uint)prompt[i] >= (uint)vocabSize)
                throw new ArgumentException($"prompt token {i} is {prompt[i]}, outside the vocabulary [0, {vocabSize})", "prompt");
        if (sampling.MaxTokens < 1)
            throw new ArgumentException($"max_tokens must be at least 1, got {sampling.MaxTokens}", "max_tokens");
        if ((long)prompt.Count + sampling.MaxTokens > maxModelLength)
            throw new ArgumentException(
                $"this model's maximum context length is {maxModelLength} tokens, but {prompt.Count + (long)sampling.MaxTokens} were requested " +
                $"({prompt.Count} in the prompt, {sampling.MaxTokens} in max_tokens)", "max_tokens");
        if (!(sampling.Temperature >= 0) || float.IsInfinity(sampling.Temperature))
            throw new ArgumentException($"temperature must be a finite number >= 0, got {sampling.Temperature}", "temperature");
        if (!(sampling.TopP > 0 && sampling.TopP <= 1))
            throw new ArgumentException($"top_p must be in (0, 1], got {sampling.TopP}", "top_p");
        if (sampling.TopK < -1)
            throw new ArgumentException($"top_k must be -1 or 0 (disabled) or at least 1, got {sampling.TopK}", "top_k");
        foreach (var stop in sampling.Stop)
            if (string.IsNullOrEmpty(stop))
                throw new ArgumentException("stop strings must not be empty", "stop");
        if (sampling.Logprobs is < 0 or > AsyncEngine.MaxLogprobs)
            throw new ArgumentException($"logprobs must be in 0..{AsyncEngine.MaxLogprobs}, got {sampling.Logprobs}", "logprobs");
        if (sampling.PromptLogprobs is < 0 or > AsyncEngine.MaxLogprobs)
            throw new ArgumentException($"prompt logprobs must be in 0..{AsyncEngine.MaxLogprobs}, got {sampling.PromptLogprobs}", "logprobs");
    }
}
