package console

// SignInFailuresPerWindow is the throttle's bound, for the console's tests
// (package console_test).
const SignInFailuresPerWindow = signInFailuresPerWindow
