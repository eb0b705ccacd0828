package broker

// account is the broker's state of one configured account.
type account struct {
	name string
}
