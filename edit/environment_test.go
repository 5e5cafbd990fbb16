package edit

import (
	"strings"
	"testing"
)

func TestUpdateEnvironment(t *testing.T) {
	snap, files := template(t)
	res, err := UpdateEnvironment(snap, files, "production", EnvironmentSettings{
		Name: ptr("Prod"), ReviewRequired: ptr(false), HideDisabledFlags: ptr(true), AllowClientTraits: ptr(true), HideSensitiveData: ptr(false),
	})
	checkEdit(t, files, res, err, `production: settings name "Prod", hide_disabled_flags on, review_required off`, map[string]string{
		"environments/production/environment.json": `{
  "$schema": "../../schemas/environment.schema.json",
  "id": 3,
  "name": "Prod",
  "client_key": "prd_Vn4sT8wQ1zLk6PjH9rXc",
  "description": "Live traffic. Changes need review (see CODEOWNERS).",
  "hide_disabled_flags": true,
  "review_required": false,
  "hide_sensitive_data": false
}
`})
	res, err = UpdateEnvironment(snap, files, "staging", EnvironmentSettings{Description: ptr(""), AllowClientTraits: ptr(false), HideSensitiveData: ptr(true)})
	checkEdit(t, files, res, err, "staging: settings description removed, hide_sensitive_data on, allow_client_traits off", map[string]string{
		"environments/staging/environment.json": `{
  "$schema": "../../schemas/environment.schema.json",
  "id": 2,
  "name": "Staging",
  "client_key": "stg_Kd83nQpZ2xVw7RtL5mYb",
  "hide_sensitive_data": true,
  "allow_client_traits": false
}
`})
	res, err = UpdateEnvironment(snap, files, "staging", EnvironmentSettings{Name: ptr("Staging"), HideDisabledFlags: ptr(false), ReviewRequired: ptr(false)})
	checkEdit(t, files, res, err, "staging: settings no change", nil)

	for _, tc := range []struct {
		env   string
		s     EnvironmentSettings
		field string
	}{
		{"prod", EnvironmentSettings{Name: ptr("P")}, "404 environment"},
		{"production", EnvironmentSettings{Name: ptr("")}, "name"},
		{"production", EnvironmentSettings{Name: ptr(strings.Repeat("n", 201))}, "name"},
		{"production", EnvironmentSettings{Description: ptr(strings.Repeat("d", 2001))}, "description"},
	} {
		res, err := UpdateEnvironment(snap, files, tc.env, tc.s)
		checkError(t, res, err, tc.field)
	}
}
