"""Who may do what: principals (identity -> role and scope), the scope checks over the use
cases, and local certificates for the secure set-up."""
