package agent

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

func harden() error {
	var errs []error
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		errs = append(errs, fmt.Errorf("harden: setrlimit core 0: %w", err))
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		errs = append(errs, fmt.Errorf("harden: prctl PR_SET_DUMPABLE 0: %w", err))
	}
	return errors.Join(errs...)
}
