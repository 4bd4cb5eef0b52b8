namespace OServe.Models;
