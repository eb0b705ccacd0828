package main

// execAccount reads an account given before the command, the aws-vault
// habit "ncagent exec NAME -- COMMAND": a first argument followed by "--",
// or a first argument that names a configured account (a program of that
// name would need ./NAME or --). It returns the command and the account
// (flagAccount, from --account, when no account is given this way).
func execAccount(e *env, argv []string, flagAccount string) ([]string, string) {
	if flagAccount != "" || len(argv) < 2 {
		return argv, flagAccount
	}
	if argv[1] == "--" {
		return argv[2:], argv[0]
	}
	if files, err := loadFiles(e); err == nil {
		if _, ok := files.Config.Accounts[argv[0]]; ok {
			return argv[1:], argv[0]
		}
	}
	return argv, flagAccount
}
