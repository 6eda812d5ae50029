package loginui

import (
	"fmt"
	"strings"
	"time"
)

// Strings are every user-visible string of the UI, in one place so that a
// translation is one more value of this type.
type Strings struct {
	// Layout
	Lang, SkipToContent string

	// Sign in
	SignInTitle, UsernameOrEmail, Password, SignIn, ContinueTo, Or, ContinueWith string
	ForgotPassword, CreateAccount, NoAccount                                     string
	InvalidCredentials, TooManyAttempts, EmailNotVerified, ResendVerification    string
	SessionExpired, SomethingWrong, TryAgain, BadRequest, NotFound               string
	Unavailable                                                                  string

	// Consent and sign out
	ConsentTitle, WantsAccess, Permissions, Allow, Deny, SignedInAs string
	SignOutTitle, SignOutQuestion, SignOut, SignedOutTitle          string
	SignedOutText, SignedInTitle, GoToAccount, Cancel               string

	// Register
	RegisterTitle, Email, Username, UsernameHelp, DisplayName, PasswordHelp string
	ConfirmPassword, Register, HaveAccount, PasswordsDiffer, Required       string
	RegistrationClosed, CheckEmailTitle, CheckEmailText                     string
	ContinueToSignIn                                                        string

	// Email verification
	VerifyTitle, VerifyText, VerifyButton, VerifiedTitle, VerifiedText string
	AddressHasAccount, ChooseUsername                                  string
	ResendTitle, ResendText, ResendButton, ResendSent                  string
	LinkInvalid                                                        string

	// Forgot / reset password
	ForgotTitle, ForgotText, ForgotButton, ForgotSent, BackToSignIn string
	ResetTitle, NewPassword, ResetButton, ResetDoneTitle            string
	ResetDoneText                                                   string

	// Account page
	AccountTitle, Profile, PictureURL, Locale, Save, Saved, EmailSection         string
	GivenName, FamilyName, MiddleName, Nickname, Website, Zoneinfo, ZoneinfoHelp string
	Birthdate, BirthdateHelp, Phone, PhoneHelp, AddressLegend                    string
	Street, Locality, Region, PostalCode, Country                                string
	NewEmail, ChangeEmail, EmailChangeSent, Verified, NotVerified                string
	PasswordSection, CurrentPassword, ChangePassword, PasswordChanged            string
	SessionsSection, ThisDevice, SignedInAt, LastSeen, SessionEnded, NoSessions  string
	AppsSection, Revoke, AppRevoked, DeleteSection, DeleteText                   string
	DeleteConfirm, DeleteButton, DeletedTitle, DeletedText, UnknownDevice, Since string
	IdentitiesSection, Unlink, IdentityUnlinked, LastCredential                  string

	// Second factor (sign-in) and enrolment
	SecondFactorTitle, SecondFactorHelp, Code, Verify, InvalidCode, Continue  string
	EnrolTitle, EnrolRequiredBy, EnrolText, QRAlt, EnrolSecretText, EnrolCode string
	RecoveryCodesTitle, RecoveryCodesText                                     string
	MFASection, MFAOff, MFAOn, SetUpApp, Remove, NewRecoveryCodes, CodesLeft  string
	TechnicalDetails                                                          string
	SignInWithPasskey, UsePasskey, AddPasskey, PasskeyName, PasskeyFailed     string
	PasskeyAdded, PasskeysText, MethodToRemove                                string
	MFAEnabledNotice, FactorRemoved, LastUsed, Never, DeleteGraceText         string
	DeleteSupportText                                                         string

	Scopes map[string]string
}

// English is the default language.
var English = Strings{
	Lang:          "en",
	SkipToContent: "Skip to content",

	SignInTitle:        "Sign in",
	UsernameOrEmail:    "Username or email",
	Password:           "Password",
	SignIn:             "Sign in",
	ContinueTo:         "to continue to",
	Or:                 "or",
	ContinueWith:       "Continue with",
	ForgotPassword:     "Forgot password?",
	CreateAccount:      "Create an account",
	NoAccount:          "No account yet?",
	InvalidCredentials: "Invalid username or password.",
	TooManyAttempts:    "Too many attempts. Try again in %s.",
	EmailNotVerified:   "Verify your email address before signing in. We can send the link again.",
	ResendVerification: "Send the verification link again",
	SessionExpired:     "This sign-in request has expired. Go back to the application and start again.",
	SomethingWrong:     "Something went wrong",
	Unavailable:        "Temporarily unavailable",
	TryAgain:           "Please try again in a moment.",
	BadRequest:         "The form could not be read. Reload the page and try again.",
	NotFound:           "Page not found",

	ConsentTitle:    "Allow access?",
	WantsAccess:     "wants to:",
	Permissions:     "Permissions requested",
	Allow:           "Allow",
	Deny:            "Deny",
	SignedInAs:      "Signed in as",
	SignOutTitle:    "Sign out?",
	SignOutQuestion: "Do you want to sign out?",
	SignOut:         "Sign out",
	SignedOutTitle:  "Signed out",
	SignedOutText:   "You have been signed out. You can close this window.",
	SignedInTitle:   "You are signed in",
	GoToAccount:     "Manage your account",
	Cancel:          "Cancel",

	RegisterTitle:      "Create your account",
	Email:              "Email",
	Username:           "Username",
	UsernameHelp:       "2–39 characters: lowercase letters, digits, dots, dashes and underscores.",
	DisplayName:        "Name",
	PasswordHelp:       "At least 8 characters. Avoid common passwords.",
	ConfirmPassword:    "Confirm password",
	Register:           "Create account",
	HaveAccount:        "Already have an account?",
	PasswordsDiffer:    "The passwords do not match.",
	Required:           "is required",
	RegistrationClosed: "Registration is closed. Ask an administrator for an account.",
	CheckEmailTitle:    "Check your email",
	CheckEmailText:     "If the address can be used, we have sent a link to %s. Follow it to confirm the address and finish creating your account.",
	ContinueToSignIn:   "Continue to sign in",

	VerifyTitle:       "Verify your email",
	VerifyText:        "Confirm that this email address is yours.",
	VerifyButton:      "Verify my email",
	VerifiedTitle:     "Email verified",
	VerifiedText:      "Your email address %s is verified.",
	AddressHasAccount: "This address already has an account. Sign in, or reset your password if you have forgotten it.",
	ChooseUsername:    "Choose another username to finish creating your account.",
	ResendTitle:       "Verify your email",
	ResendText:        "Enter your username or email and we will send a new verification link.",
	ResendButton:      "Send link",
	ResendSent:        "If that account or registration needs verifying, a new link is on its way.",
	LinkInvalid:       "This link is invalid or has expired. Links work once and only for a limited time.",

	ForgotTitle:    "Reset your password",
	ForgotText:     "Enter your email address and we will send you a link to choose a new password.",
	ForgotButton:   "Send reset link",
	ForgotSent:     "If an account uses %s, a password reset link is on its way. It expires in one hour.",
	BackToSignIn:   "Back to sign in",
	ResetTitle:     "Choose a new password",
	NewPassword:    "New password",
	ResetButton:    "Set new password",
	ResetDoneTitle: "Password changed",
	ResetDoneText:  "Your password has been changed and you have been signed out everywhere. Sign in with the new password.",

	AccountTitle:    "Your account",
	Profile:         "Profile",
	PictureURL:      "Picture URL",
	Locale:          "Language (e.g. en or en-GB)",
	GivenName:       "First name",
	FamilyName:      "Last name",
	MiddleName:      "Middle name",
	Nickname:        "Nickname",
	Website:         "Website",
	Zoneinfo:        "Time zone",
	ZoneinfoHelp:    "For example Europe/Paris or America/New_York.",
	Birthdate:       "Date of birth",
	BirthdateHelp:   "YYYY-MM-DD, or 0000-MM-DD to leave out the year.",
	Phone:           "Phone number",
	PhoneHelp:       "With the country code, for example +44 20 7123 4567.",
	AddressLegend:   "Postal address",
	Street:          "Street address",
	Locality:        "Town or city",
	Region:          "Region or state",
	PostalCode:      "Postal code",
	Country:         "Country",
	Save:            "Save",
	Saved:           "Saved.",
	EmailSection:    "Email address",
	NewEmail:        "New email address",
	ChangeEmail:     "Change email",
	EmailChangeSent: "We sent a confirmation link to the new address. The change happens when you follow it.",
	Verified:        "verified",
	NotVerified:     "not verified",
	PasswordSection: "Password",
	CurrentPassword: "Current password",
	ChangePassword:  "Change password",
	PasswordChanged: "Password changed. Your other sessions have been signed out.",
	SessionsSection: "Where you are signed in",
	ThisDevice:      "This device",
	SignedInAt:      "Signed in",
	LastSeen:        "last active",
	SessionEnded:    "That session has been signed out.",
	NoSessions:      "No other sessions.",
	AppsSection:     "Connected apps",
	Revoke:          "Disconnect",
	AppRevoked:      "The app has been disconnected and its access revoked.",
	DeleteSection:   "Delete account",
	DeleteText:      "Deleting your account signs you out everywhere and disconnects every app.",
	DeleteConfirm:   "I understand, delete my account",
	DeleteButton:    "Delete my account",
	DeletedTitle:    "Account deleted",
	DeletedText:     "Your account has been deleted and you have been signed out.",
	UnknownDevice:   "Unknown browser",
	Since:           "since",

	SecondFactorTitle:  "Two-step verification",
	SecondFactorHelp:   "Enter the 6-digit code from your authenticator app, or one of your recovery codes.",
	Code:               "Code",
	Verify:             "Verify",
	InvalidCode:        "That code is not valid. Check the time on your phone and try a new code.",
	Continue:           "Continue",
	EnrolTitle:         "Set up two-step verification",
	EnrolRequiredBy:    "Two-step verification is required to continue to",
	EnrolText:          "Scan this QR code with an authenticator app (such as Google Authenticator, 1Password or Aegis), then enter the code it shows.",
	QRAlt:              "QR code for your authenticator app",
	EnrolSecretText:    "Can't scan it? Enter this key in the app instead:",
	EnrolCode:          "Code from the app",
	RecoveryCodesTitle: "Your recovery codes",
	MFASection:         "Two-step verification",
	SignInWithPasskey:  "Sign in with a passkey",
	UsePasskey:         "Use a passkey instead",
	AddPasskey:         "Add a passkey",
	PasskeyName:        "Name for this passkey",
	PasskeyFailed:      "The passkey could not be used. Try again, or use another way.",
	PasskeyAdded:       "The passkey was added.",
	MethodToRemove:     "Sign-in method to remove",
	IdentitiesSection:  "Linked sign-in providers",
	Unlink:             "Unlink",
	IdentityUnlinked:   "The sign-in provider was unlinked.",
	LastCredential:     "This is your only way to sign in. Set a password first, then unlink it.",
	PasskeysText:       "A passkey signs you in with your fingerprint, face or screen lock, without a password.",
	TechnicalDetails:   "Technical details",
	MFAOff:             "Two-step verification is off. Turn it on to ask for a code from your phone after your password.",
	MFAOn:              "Two-step verification is on. Signing in asks for a code after your password.",
	SetUpApp:           "Set up an authenticator app",
	Remove:             "Remove",
	NewRecoveryCodes:   "Make new recovery codes",
	CodesLeft:          "recovery codes left",
	MFAEnabledNotice:   "Two-step verification is on.",
	FactorRemoved:      "The sign-in method was removed.",
	LastUsed:           "last used",
	Never:              "never used",
	DeleteGraceText:    "You can ask for it back within %s.",
	DeleteSupportText:  "Write to %s to restore it.",
	RecoveryCodesText:  "Keep these codes somewhere safe. Each one signs you in once if you lose your phone. They are shown only now.",

	Scopes: map[string]string{
		"openid":         "Sign you in with your account",
		"profile":        "See your name, username and profile details",
		"email":          "See your email address",
		"phone":          "See your phone number",
		"address":        "See your postal address",
		"groups":         "See which groups you belong to",
		"roles":          "See the roles you hold",
		"tier":           "See your plan and its limits",
		"offline_access": "Stay signed in when you are not using it",
		"account:read":   "See your account details and sessions",
		"account:write":  "Change your account details and password",
	},
}

func (s Strings) scopeLabel(scope string) string {
	if l, ok := s.Scopes[scope]; ok {
		return l
	}
	return "Use the “" + scope + "” permission"
}

// tooMany renders TooManyAttempts with a rounded wait.
func (s Strings) tooMany(wait time.Duration) string {
	var d string
	switch {
	case wait <= time.Minute:
		d = fmt.Sprintf("%d seconds", max(1, int(wait.Round(time.Second)/time.Second)))
	case wait < 2*time.Hour:
		d = fmt.Sprintf("%d minutes", int((wait+time.Minute-1)/time.Minute))
	default:
		d = fmt.Sprintf("%d hours", int((wait+time.Hour-1)/time.Hour))
	}
	return fmt.Sprintf(s.TooManyAttempts, d)
}

// deleteNote is what the delete section says about getting the account
// back: the grace period and, when configured, whom to write to.
func (s Strings) deleteNote(grace time.Duration, support string) string {
	var parts []string
	if grace > 0 {
		d := fmt.Sprintf("%d days", int((grace+24*time.Hour-1)/(24*time.Hour)))
		if grace < 48*time.Hour {
			d = fmt.Sprintf("%d hours", int((grace+time.Hour-1)/time.Hour))
		}
		parts = append(parts, fmt.Sprintf(s.DeleteGraceText, d))
	}
	if support != "" {
		parts = append(parts, fmt.Sprintf(s.DeleteSupportText, support))
	}
	return strings.Join(parts, " ")
}
