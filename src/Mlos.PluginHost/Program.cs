using Mlos.PluginHost;

// mlos_plugin_host: started by the core (posix_spawn) with its first channel at descriptors 3
// (socket) and 4 (shared region). It opens one plugin with the core's own loader and checks,
// then serves the plugin's entries on every channel the core sends it. It ends when the core's
// end of the first channel closes: the core let it go, or died (the kernel closes its descriptors).
return HostMain.Run(args);
