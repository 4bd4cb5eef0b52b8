namespace OServe.Contracts;
