OServe.Engine.NativeEnvironment.Apply();
return await OServe.Engine.Cli.OServeCli.RunAsync(args);
