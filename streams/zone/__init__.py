"""zone"""
