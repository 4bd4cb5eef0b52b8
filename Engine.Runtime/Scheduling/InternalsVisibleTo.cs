using System.Runtime.CompilerServices;

// Scheduler tests set up sequence states (computed tokens, block tables) directly.
[assembly: InternalsVisibleTo("Engine.Tests")]
