return await OServe.Engine.Cli.OServeCli.RunAsync(args);
