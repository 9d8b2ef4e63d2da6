// Package onvif is camd's ONVIF service: the subset of Profile S that
// NVRs, Home Assistant and Frigate use (docs/onvif.md).
//
// One http.Handler answers the device service (GetSystemDateAndTime,
// GetCapabilities, GetServices, GetDeviceInformation, GetScopes,
// GetNetworkInterfaces, GetHostname), the media service (GetProfiles,
// GetVideoSources, GetVideoEncoderConfigurations, GetStreamUri: the RTSP
// URL, GetSnapshotUri) and the events service (PullPoint subscriptions:
// CreatePullPointSubscription, PullMessages, Renew, Unsubscribe) carrying
// motion and doorbell events from the event bus.
//
// Requests are SOAP 1.2 envelopes of bounded size, parsed with
// encoding/xml as a bounded tree (no DTD). Every action but the few
// Profile S allows before authentication (GetSystemDateAndTime,
// GetCapabilities, GetServices, GetServiceCapabilities, GetHostname)
// needs a WS-Security UsernameToken with a PasswordDigest made with a
// stream key (pairing.Manager.VerifyKey through Options.Verify); its
// created time must be inside a window around camd's clock and the
// token is not accepted twice (a bounded cache, with a one-second grace
// for the same token from the same address, as libonvif sends). Unknown
// actions and bad input are answered with SOAP faults.
//
// SecurityHeader and Envelope build requests as a client does.
package onvif
