package edit

import (
	"encoding/json"
	"testing"
)

func TestCreateSegment(t *testing.T) {
	snap, files := template(t)
	// Fields come in any order and are written in the repository's.
	res, err := CreateSegment(snap, files, "vip", SegmentSpec{
		Description: ptr("Big spenders & friends"),
		Rules: json.RawMessage(`[{"conditions": [{"value": "5000", "operator": "GREATER_THAN", "property": "lifetime_value"}],
			"rules": [{"conditions": [{"operator": "IS_SET", "property": "referrer"}], "type": "ANY"}], "type": "ALL"}]`),
	})
	checkEdit(t, files, res, err, "segment vip created", map[string]string{"segments/vip.json": `{
  "$schema": "../schemas/segment.schema.json",
  "id": 111,
  "description": "Big spenders & friends",
  "rules": [
    {
      "type": "ALL",
      "conditions": [
        {
          "property": "lifetime_value",
          "operator": "GREATER_THAN",
          "value": "5000"
        }
      ],
      "rules": [
        {
          "type": "ANY",
          "conditions": [
            {
              "property": "referrer",
              "operator": "IS_SET"
            }
          ]
        }
      ]
    }
  ]
}
`})
}

func TestCreateSegmentErrors(t *testing.T) {
	snap, files := template(t)
	for _, tc := range []struct {
		name, key, rules string
		field            string
	}{
		{"bad key", "beta users", `[{"type": "ALL"}]`, "key"},
		{"exists", "beta_users", `[{"type": "ALL"}]`, "key"},
		{"exists in another case", "BETA_USERS", `[{"type": "ALL"}]`, "key"},
		{"no rules", "x", ``, "rules"},
		{"rules not JSON", "x", `[{"type": ALL}]`, "rules"},
		{"rules not an array", "x", `{"type": "ALL"}`, "rules"},
		{"no rule", "x", `[]`, "rules"},
		{"duplicate key", "x", `[{"type": "ALL", "type": "ANY"}]`, "rules"},
		{"rule not an object", "x", `[{"type": "ALL"}, "ANY"]`, "rules[1]"},
		{"condition not an object", "x", `[{"type": "ALL", "rules": [{"type": "ANY", "conditions": [1]}]}]`, "rules[0].rules[0].conditions[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rules json.RawMessage
			if tc.rules != "" {
				rules = json.RawMessage(tc.rules)
			}
			res, err := CreateSegment(snap, files, tc.key, SegmentSpec{Rules: rules})
			checkError(t, res, err, tc.field)
		})
	}
}

func TestUpdateSegment(t *testing.T) {
	snap, files := template(t)
	res, err := UpdateSegment(snap, files, "even_user_ids", SegmentSpec{Rules: json.RawMessage(`[{"type": "ALL", "conditions": [{"property": "user_id", "operator": "MODULO", "value": "3|0"}]}]`)})
	checkEdit(t, files, res, err, "segment even_user_ids rules changed", map[string]string{"segments/even_user_ids.json": `{
  "$schema": "../schemas/segment.schema.json",
  "id": 107,
  "description": "Identities with an even numeric user_id (an A/B split by id).",
  "rules": [
    {
      "type": "ALL",
      "conditions": [
        {
          "property": "user_id",
          "operator": "MODULO",
          "value": "3|0"
        }
      ]
    }
  ]
}
`})
	res, err = UpdateSegment(snap, files, "gradual_rollout_10pct", SegmentSpec{Description: ptr("10%."), Rules: json.RawMessage(`[{"type":"ALL","conditions":[{"operator":"PERCENTAGE_SPLIT","value":"10"}]}]`)})
	checkEdit(t, files, res, err, "segment gradual_rollout_10pct description changed", map[string]string{"segments/gradual_rollout_10pct.json": `{
  "$schema": "../schemas/segment.schema.json",
  "id": 105,
  "description": "10%.",
  "rules": [
    {
      "type": "ALL",
      "conditions": [
        {
          "operator": "PERCENTAGE_SPLIT",
          "value": "10"
        }
      ]
    }
  ]
}
`})
	res, err = UpdateSegment(snap, files, "new_users", SegmentSpec{Description: ptr(""), Rules: json.RawMessage(`[{"type": "ALL", "conditions": [{"property": "account_age_days", "operator": "LESS_THAN", "value": 7}]}]`)})
	checkEdit(t, files, res, err, "segment new_users description and rules changed", map[string]string{"segments/new_users.json": `{
  "$schema": "../schemas/segment.schema.json",
  "id": 108,
  "rules": [
    {
      "type": "ALL",
      "conditions": [
        {
          "property": "account_age_days",
          "operator": "LESS_THAN",
          "value": 7
        }
      ]
    }
  ]
}
`})
	res, err = UpdateSegment(snap, files, "new_users", SegmentSpec{})
	checkEdit(t, files, res, err, "segment new_users no change", nil)
	res, err = UpdateSegment(snap, files, "old_users", SegmentSpec{})
	checkError(t, res, err, "404 segment")
	res, err = UpdateSegment(snap, files, "new_users", SegmentSpec{Rules: json.RawMessage(`[`)})
	checkError(t, res, err, "rules")
	res, err = UpdateSegment(snap, files, "new_users", SegmentSpec{Description: ptr("\xff")})
	checkError(t, res, err, "description")
}

// Deleting a segment removes its overrides, as Flagsmith does.
func TestDeleteSegment(t *testing.T) {
	snap, files := template(t)
	res, err := DeleteSegment(snap, files, "beta_users")
	checkEdit(t, files, res, err, "segment beta_users deleted, with its overrides in production/beta_features_banner, production/new_checkout", map[string]string{
		"segments/beta_users.json":                                   "",
		"environments/production/features/beta_features_banner.json": "",
		"environments/production/features/new_checkout.json": stateHead + `  "enabled": true,
  "value": "classic",
  "weights": {
    "one_page": 10,
    "express": 10
  },
  "segment_overrides": [
    {
      "segment": "premium_customers",
      "priority": 2,
      "enabled": true,
      "weights": {
        "one_page": 50,
        "express": 50
      }
    }
  ],
  "identity_overrides": [
    {
      "identifiers": [
        "qa@acme.example"
      ],
      "enabled": true,
      "value": "one-page"
    }
  ]
}
`,
	})
	res, err = DeleteSegment(snap, files, "beta")
	checkError(t, res, err, "404 segment")
}
