package server

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/gen/api"
	"github.com/customerd/customerd/store"
)

// fieldsOf are the account fields of the contract's Customer, by their JSON
// names, as places in c: requests are read from them and answers written to
// them, so a field added to or renamed in openapi.yaml is a compile error
// here until it is mapped. Email and phone number are the account's
// identifiers, not profile fields (see customerOf).
func fieldsOf(c *api.Customer) (texts map[string]**string, flags map[string]**bool) {
	return map[string]**string{
			"email": &c.Email, "phoneNumber": &c.PhoneNumber, "firstName": &c.FirstName, "lastName": &c.LastName,
			"title": &c.Title, "sex": &c.Sex, "birthDate": &c.BirthDate, "nationality": &c.Nationality,
			"address": &c.Address, "streetNumber": &c.StreetNumber, "postcode": &c.Postcode, "city": &c.City,
			"region": &c.Region, "country": &c.Country, "language": &c.Language, "storeId": &c.StoreId, "advisor": &c.Advisor,
		}, map[string]**bool{
			"isProspect": &c.IsProspect, "consents_email": &c.ConsentsEmail, "consents_sms": &c.ConsentsSms,
			"consents_post": &c.ConsentsPost, "consents_emailReceipt": &c.ConsentsEmailReceipt,
		}
}

// inputOf is the change a request body asks for: the account fields it
// sets (an empty text clears one; zipCode is postcode's alias) and its
// free-form properties, checked and kept as sent. Read-only fields are not
// read: a request that sends them changes nothing.
func inputOf(body *api.Customer) (account.Input, error) {
	in := account.Input{Set: map[string]any{}}
	if body == nil {
		return in, nil
	}
	texts, flags := fieldsOf(body)
	for name, v := range texts {
		if *v != nil {
			in.SetText(name, **v)
		}
	}
	if body.ZipCode != nil && body.Postcode == nil {
		in.SetText("postcode", *body.ZipCode)
	}
	for name, v := range flags {
		if *v != nil {
			in.Set[name] = **v
		}
	}
	var err error
	in.Extras, err = account.Extras(body.AdditionalProperties, nil)
	return in, err
}

// customerOf is an account as the contract shows it.
func customerOf(c *store.Customer) (api.Customer, error) {
	id, err := uuid.Parse(c.ID)
	if err != nil {
		return api.Customer{}, err
	}
	created, updated := c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	out := api.Customer{Id: &id, Email: c.Email, PhoneNumber: c.Phone, EmailVerified: &c.EmailVerified,
		PhoneNumberVerified: &c.PhoneVerified, CreatedAt: &created, UpdatedAt: &updated}
	texts, flags := fieldsOf(&out)
	for name, v := range c.Profile {
		switch v := v.(type) {
		case string:
			if p, ok := texts[name]; ok {
				*p = &v
				continue
			}
			if name == "activatedAt" {
				if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
					out.ActivatedAt = &t
					continue
				}
			}
		case bool:
			if p, ok := flags[name]; ok {
				*p = &v
				continue
			}
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return api.Customer{}, err
		}
		if out.AdditionalProperties == nil {
			out.AdditionalProperties = map[string]json.RawMessage{}
		}
		out.AdditionalProperties[name] = raw
	}
	return out, nil
}

// customerJSON answers an account. (The generated response types are types
// of their own, without Customer's MarshalJSON: they would drop the
// free-form properties.)
type customerJSON api.Customer

func (c customerJSON) write(w http.ResponseWriter) error {
	return WriteJSON(w, http.StatusOK, api.Customer(c))
}

func (c customerJSON) VisitGetCustomerResponse(w http.ResponseWriter) error    { return c.write(w) }
func (c customerJSON) VisitUpsertCustomerResponse(w http.ResponseWriter) error { return c.write(w) }
