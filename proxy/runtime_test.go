package proxy

import "runtime"

func runtimeLinux() bool { return runtime.GOOS == "linux" }
