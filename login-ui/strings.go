package loginui

// Strings are every user-visible string of the UI, in one place so that a
// translation is one more value of this type.
type Strings struct {
	SignInTitle, UsernameOrEmail, Password, SignIn                  string
	InvalidCredentials, SessionExpired, SomethingWrong, TryAgain    string
	ConsentTitle, WantsAccess, Permissions, Allow, Deny, SignedInAs string
	SignOutTitle, SignOut, SignedOutTitle, SignedOutText            string
	SignedInTitle, BadRequest, NotFound                             string
	Scopes                                                          map[string]string
}

// English is the default language.
var English = Strings{
	SignInTitle:        "Sign in",
	UsernameOrEmail:    "Username or email",
	Password:           "Password",
	SignIn:             "Sign in",
	InvalidCredentials: "Invalid username or password.",
	SessionExpired:     "This sign-in request has expired. Go back to the application and start again.",
	SomethingWrong:     "Something went wrong",
	TryAgain:           "Please try again in a moment.",
	ConsentTitle:       "Allow access?",
	WantsAccess:        "wants to:",
	Permissions:        "Permissions requested",
	Allow:              "Allow",
	Deny:               "Deny",
	SignedInAs:         "Signed in as",
	SignOutTitle:       "Sign out?",
	SignOut:            "Sign out",
	SignedOutTitle:     "Signed out",
	SignedOutText:      "You have been signed out. You can close this window.",
	SignedInTitle:      "You are signed in",
	BadRequest:         "The form could not be read. Reload the page and try again.",
	NotFound:           "Page not found",
	Scopes: map[string]string{
		"openid":         "Sign you in with your account",
		"profile":        "See your name and username",
		"email":          "See your email address",
		"offline_access": "Stay signed in when you are not using it",
	},
}

func (s Strings) scopeLabel(scope string) string {
	if l, ok := s.Scopes[scope]; ok {
		return l
	}
	return "Use the “" + scope + "” permission"
}
