-- pg_consent install script, part 90: the shipped taxonomy and purposes.
-- Category keys follow the fideslang taxonomy (Ethyca Fides); dpv holds the
-- W3C Data Privacy Vocabulary term.  The first seven tagged categories are
-- the attributes of the 2019 survey (seed/customer-data-survey-2019.de.txt).

INSERT INTO consent.categories (key, parent, label, special, dpv) VALUES
    ('user', NULL, 'Data about a user', false, 'dpv:PersonalData'),
    ('user.contact', 'user', 'Contact data', false, 'dpv-pd:Contact'),
    ('user.demographic', 'user', 'Demographic data', false, 'dpv-pd:Demographic'),
    ('user.biometric', 'user', 'Biometric data (GDPR Art. 9)', true, 'dpv-pd:Biometric'),
    ('user.health_and_medical', 'user', 'Health and medical data (GDPR Art. 9)', true, 'dpv-pd:Health'),
    ('user.behavior', 'user', 'Behavioral data', false, 'dpv-pd:Behavioral'),
    ('user.device', 'user', 'Device data', false, 'dpv-pd:DeviceBased');

SELECT consent.define_category('user.contact.email', 'text', 'email', 'email', false, 'E-mail address');
SELECT consent.define_category('user.contact.phone_number', 'text', 'phone', 'partial(0,2)', false, 'Phone number');
SELECT consent.define_category('user.contact.address', 'text', 'address', 'redact', false, 'Postal address');
SELECT consent.define_category('user.name', 'text', 'name', 'initials', false, 'Name');
SELECT consent.define_category('user.demographic.date_of_birth', 'date', 'birthdate', 'year', false, 'Date of birth');
SELECT consent.define_category('user.biometric.fingerprint', 'bytea', 'fingerprint', 'null', true, 'Fingerprint');
SELECT consent.define_category('user.health_and_medical.genetic', 'bytea', 'dna', 'null', true, 'Genetic data (DNA)');
SELECT consent.define_category('user.behavior.search_history', 'text', 'search_history', 'null', false, 'Search history');
SELECT consent.define_category('user.behavior.purchase_history', 'jsonb', 'purchase_history', 'null', false,
                               'Purchase history');
SELECT consent.define_category('user.device.ip_address', 'inet', 'ip_address', 'generalize', false, 'IP address');

UPDATE consent.categories SET dpv = v.dpv FROM (VALUES
    ('user.contact.email', 'dpv-pd:EmailAddress'),
    ('user.contact.phone_number', 'dpv-pd:PhoneNumber'),
    ('user.contact.address', 'dpv-pd:PhysicalAddress'),
    ('user.name', 'dpv-pd:Name'),
    ('user.demographic.date_of_birth', 'dpv-pd:BirthDate'),
    ('user.biometric.fingerprint', 'dpv-pd:Fingerprint'),
    ('user.health_and_medical.genetic', 'dpv-pd:Genetic'),
    ('user.behavior.search_history', 'dpv-pd:SearchHistory'),
    ('user.behavior.purchase_history', 'dpv-pd:PurchasesAndSpendingHabit'),
    ('user.device.ip_address', 'dpv-pd:IPAddress')) AS v(key, dpv)
WHERE categories.key = v.key;

INSERT INTO consent.purposes (key, parent, label, basis, necessary) VALUES
    ('essential', NULL, 'Providing the service the customer asked for', 'contract', '{user.contact.email,user.name,user.contact.address}'),
    ('essential.service', 'essential', 'Operating the contracted service', 'contract', '{user.contact.email,user.name,user.contact.address}'),
    ('marketing', NULL, 'Marketing', 'consent', '{}'),
    ('marketing.advertising', 'marketing', 'Advertising', 'consent', '{}'),
    ('marketing.communications', 'marketing', 'Marketing communications', 'consent', '{}'),
    ('marketing.communications.email', 'marketing.communications', 'Marketing e-mails', 'consent', '{}'),
    ('personalize', NULL, 'Personalizing the service', 'consent', '{}'),
    ('analytics', NULL, 'Analytics', 'consent', '{}'),
    ('train_ai_system', NULL, 'Training AI systems', 'consent', '{}'),
    ('legal_obligation', NULL, 'Complying with a legal obligation', 'legal_obligation',
     '{user.name,user.contact.address,user.demographic.date_of_birth}');

UPDATE consent.categories SET shipped = true;
UPDATE consent.purposes SET shipped = true;
